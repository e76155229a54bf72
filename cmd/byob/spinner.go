package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// spinner shows that byob is waiting, with the elapsed time. On a terminal it
// redraws one line; otherwise it prints the message once and a line a minute.
type spinner struct {
	w     io.Writer
	tty   bool
	msg   string
	start time.Time
	mu    sync.Mutex
	note  string
	stop  chan struct{}
	done  chan struct{}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func startSpinner(w io.Writer, msg string) *spinner {
	s := &spinner{w: w, tty: isTerminal(w), msg: msg, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if !s.tty {
		fmt.Fprintln(w, msg)
	}
	go s.loop()
	return s
}

func (s *spinner) loop() {
	defer close(s.done)
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	every := 100 * time.Millisecond
	if !s.tty {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			if s.tty {
				fmt.Fprint(s.w, "\r\033[K")
			}
			return
		case <-t.C:
			s.mu.Lock()
			note := s.note
			s.mu.Unlock()
			if s.tty {
				fmt.Fprintf(s.w, "\r\033[K%s %s %s%s", frames[i%len(frames)], s.msg, elapsed(time.Since(s.start)), note)
			} else {
				fmt.Fprintf(s.w, "still waiting (%s)%s\n", elapsed(time.Since(s.start)), note)
			}
		}
	}
}

// setNote shows a short remark after the elapsed time (e.g. a retry).
func (s *spinner) setNote(note string) {
	s.mu.Lock()
	s.note = note
	s.mu.Unlock()
}

// Stop clears the spinner line and returns the time waited.
func (s *spinner) Stop() time.Duration {
	close(s.stop)
	<-s.done
	return time.Since(s.start)
}

// elapsed formats a duration as m:ss or h:mm:ss.
func elapsed(d time.Duration) string {
	sec := int(d.Seconds())
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}
