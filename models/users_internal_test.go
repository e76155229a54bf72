package models

import (
	"testing"
	"time"
)

// TestPasswordHashesWaitForASlot checks that password checks beyond the
// number of cores wait rather than each taking argon2's memory at once.
func TestPasswordHashesWaitForASlot(t *testing.T) {
	hash := HashPassword("correct horse battery")
	for range cap(hashSlots) {
		hashSlots <- struct{}{} // every slot busy
	}
	done := make(chan bool)
	go func() { done <- CheckPassword(hash, "correct horse battery") }()
	select {
	case <-done:
		t.Fatal("a password check ran while every hash slot was taken")
	case <-time.After(300 * time.Millisecond):
	}
	<-hashSlots // one slot frees
	if ok := <-done; !ok {
		t.Fatal("the right password was refused once a slot freed")
	}
	for range cap(hashSlots) - 1 {
		<-hashSlots
	}
}
