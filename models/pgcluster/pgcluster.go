// Package pgcluster runs a private PostgreSQL cluster from the server binaries
// installed on the machine. The server uses it when no DATABASE_URL is given,
// and the tests use it for a throwaway cluster per test binary.
//
// The cluster listens on a unix socket inside its own directory only (no TCP),
// trusts connections on that socket, and is owned by the `postgres` OS user when
// the process runs as root (initdb and postgres refuse to run as root).
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoBinaries means no PostgreSQL server binaries were found on the machine.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found (looked on PATH, in `pg_config --bindir` and under /usr/lib/postgresql/*/bin): install the PostgreSQL server package (e.g. `apt-get install postgresql`) or set DATABASE_URL to an existing database")

// ErrInUse means another live process holds the cluster directory.
var ErrInUse = errors.New("the PostgreSQL data directory is in use by another server process")

// Options configure a cluster.
type Options struct {
	// Dir holds the data directory ("pgdata"), the socket directory, the log and the lock file.
	Dir string
	// Fast turns off durability (fsync, full page writes): for throwaway test clusters only.
	Fast bool
	// Logger receives progress lines; nil means slog.Default().
	Logger *slog.Logger
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	bin    string
	dir    string
	data   string
	sock   string
	cred   *syscall.Credential
	lock   *os.File
	log    *slog.Logger
	fast   bool
	closed bool
}

// debianGlob is where Debian's postgresql packages put the server binaries.
var debianGlob = "/usr/lib/postgresql/*/bin"

// FindBinaries returns the directory holding initdb, pg_ctl and postgres, or ErrNoBinaries.
func FindBinaries() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	// Debian installs versioned directories; take the newest.
	dirs, _ := filepath.Glob(debianGlob)
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	return "", ErrNoBinaries
}

func pgVersion(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

// Start initialises the cluster on first use, starts it and waits until it accepts
// connections. A server left running by a crashed predecessor is stopped first.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir, data: filepath.Join(dir, "pgdata"), log: opts.Logger, fast: opts.Fast}
	if c.log == nil {
		c.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := c.takeLock(); err != nil {
		return nil, err
	}
	if err := c.prepare(); err != nil {
		c.unlock()
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		c.unlock()
		return nil, err
	}
	return c, nil
}

// takeLock holds an exclusive flock on Dir/lock for the life of this process, so
// two servers never share one cluster; the kernel drops it if the process dies.
func (c *Cluster) takeLock() error {
	f, err := os.OpenFile(filepath.Join(c.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w (%s)", ErrInUse, c.dir)
		}
		return err
	}
	c.lock = f
	return nil
}

func (c *Cluster) unlock() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// prepare decides which OS user runs PostgreSQL, creates the socket directory and
// runs initdb when the data directory is new.
func (c *Cluster) prepare() error {
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the `postgres` OS user to own the cluster (initdb refuses root): %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return err
		}
		if err := allowTraverse(filepath.Dir(c.dir)); err != nil {
			return err
		}
	}
	// A unix socket path is limited to 107 bytes; fall back to a short private directory.
	c.sock = filepath.Join(c.dir, "run")
	if len(c.sock)+len("/.s.PGSQL.5432") > 100 {
		tmp, err := os.MkdirTemp("", "pgsock")
		if err != nil {
			return err
		}
		c.sock = tmp
	}
	for _, d := range []string{c.sock, c.data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if c.cred != nil {
			if err := chownTree(d, uid, gid); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err == nil {
		return nil
	}
	c.log.Info("initialising private PostgreSQL cluster", "dir", c.data, "bin", c.bin)
	args := []string{"-D", c.data, "-U", "postgres", "--encoding=UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=reject"}
	if c.fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.command("initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLines(out, 5))
	}
	return nil
}

// allowTraverse lets the postgres user pass through (not list) the
// directories above the cluster. It changes only directories under the working
// directory or the temporary directory; elsewhere it says what to do.
func allowTraverse(dir string) error {
	wd, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o001 == 0 {
			if !within(d, wd) && !within(d, os.TempDir()) {
				return fmt.Errorf("the postgres user cannot reach %s: run `chmod o+x %s` or choose another DATA_DIR", dir, d)
			}
			if err := os.Chmod(d, perm|0o001); err != nil {
				return fmt.Errorf("let the postgres user traverse %s: %w", d, err)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func within(d, root string) bool {
	rel, err := filepath.Rel(root, d)
	return root != "" && err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Its own process group: a Ctrl-C in the terminal reaches the server,
	// which then stops PostgreSQL after draining, not PostgreSQL directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	return cmd
}

// durableTuning is the private cluster's postgresql.conf beyond the defaults
// (see start); none of it gives up the durability of a committed write.
var durableTuning = []string{
	"-c wal_level=minimal", "-c max_wal_senders=0",
	"-c checkpoint_timeout=15min", "-c max_wal_size=2GB",
	"-c jit=off",
}

func (c *Cluster) start(ctx context.Context) error {
	// We hold the lock, so a live postmaster here was left by a crashed predecessor.
	if c.command("pg_ctl", "status", "-D", c.data).Run() == nil {
		c.log.Warn("stopping a PostgreSQL server left running by an earlier process", "dir", c.data)
		if out, err := c.command("pg_ctl", "stop", "-D", c.data, "-m", "fast", "-w", "-t", "30").CombinedOutput(); err != nil {
			return fmt.Errorf("stop leftover server: %w: %s", err, lastLines(out, 5))
		}
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c unix_socket_permissions=0700 -c max_connections=200", c.sock)
	// The private cluster serves this server alone: nothing replicates from
	// it, so its WAL need not carry what standbys or logical decoding read;
	// checkpoints further apart write fewer full-page images (random updates
	// of agents and audit indexes are most of the WAL otherwise); JIT
	// compilation costs more than it saves on these short queries. fsync,
	// synchronous_commit and full_page_writes stay on: an acknowledged write
	// survives a crash of the machine.
	opts += " " + strings.Join(durableTuning, " ")
	if c.fast {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	logFile := filepath.Join(c.dir, "postgres.log")
	if c.cred != nil {
		// The log is written by the postgres user.
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			os.Chown(logFile, int(c.cred.Uid), int(c.cred.Gid))
		}
	}
	// pg_ctl removes a stale postmaster.pid whose process is gone.
	cmd := c.command("pg_ctl", "start", "-D", c.data, "-l", logFile, "-o", opts, "-w", "-t", "60")
	if out, err := cmd.CombinedOutput(); err != nil {
		logTail, _ := os.ReadFile(logFile)
		return fmt.Errorf("start PostgreSQL: %w: %s %s", err, lastLines(out, 3), lastLines(logTail, 5))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("PostgreSQL did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL returns a connection URL for database name over the cluster's socket.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&sslmode=disable", name, c.sock)
}

// Dir returns the cluster's directory.
func (c *Cluster) Dir() string { return c.dir }

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return CreateDatabase(ctx, c.URL("postgres"), name, "")
}

// CreateDatabase creates database name through the server at adminURL, copied
// from template when template is not empty. An existing database is left alone.
func CreateDatabase(ctx context.Context, adminURL, name, template string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	q := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += " TEMPLATE " + pgx.Identifier{template}.Sanitize() + " STRATEGY FILE_COPY"
	}
	_, err = conn.Exec(ctx, q)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	return err
}

// Stop shuts the server down (fast mode: open sessions are ended, nothing is lost)
// and releases the directory lock. It is safe to call more than once.
func (c *Cluster) Stop() error {
	if c == nil || c.closed {
		return nil
	}
	c.closed = true
	defer c.unlock()
	out, err := c.command("pg_ctl", "stop", "-D", c.data, "-m", "fast", "-w", "-t", "60").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stop PostgreSQL: %w: %s", err, lastLines(out, 3))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
