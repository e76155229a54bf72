package models

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/agentroster/agentroster/models/internal/argon2"
)

// Roles of a user in an org.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// User is an operator.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID           uuid.UUID  `bun:",pk,type:uuid,default:gen_random_uuid()" json:"id"`
	Email        string     `json:"email"`
	PasswordHash string     `json:"-"`
	IsSA         bool       `bun:"is_sa" json:"isSa"`
	AuthEpoch    int        `json:"-"`
	DisabledAt   *time.Time `json:"disabledAt,omitempty"`
	LastLoginAt  *time.Time `json:"lastLoginAt,omitempty"`
	CreatedAt    time.Time  `bun:",nullzero,default:now()" json:"createdAt"`
	// CreatedByOrgID is the org whose admin created the user by adding their
	// email (nil: a platform admin or the bootstrap).
	CreatedByOrgID *uuid.UUID `bun:"created_by_org_id,type:uuid" json:"-"`
}

// Membership is a user's role in an org.
type Membership struct {
	bun.BaseModel `bun:"table:memberships"`

	OrgID     uuid.UUID `bun:"org_id,pk,type:uuid" json:"orgId"`
	UserID    uuid.UUID `bun:"user_id,pk,type:uuid" json:"userId"`
	Role      string    `json:"role"`
	CreatedAt time.Time `bun:",nullzero,default:now()" json:"createdAt"`
}

// Argon2id parameters: one of OWASP's equivalent minimums (12 MiB, 3 passes),
// which keeps a burst of logins from dominating the server's memory.
const (
	argonTime    = 3
	argonMemory  = 12 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// hashSlots bounds the argon2id computations running at once to the cores:
// each holds argonMemory, so a burst of sign-ins from many addresses queues
// instead of growing the server's memory by 12 MiB per request.
var hashSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// hashMemory keeps the memory of finished computations for the next ones: at
// most one buffer per slot, so a burst of sign-ins reuses a few buffers
// instead of leaving 12 MiB of garbage per sign-in (which the runtime frees
// but keeps mapped until its scavenger returns it). The buffers are let go
// once no password was hashed for hashMemoryIdle.
var hashMemory struct {
	sync.Mutex
	free []*argon2.Buffer
	idle *time.Timer
}

const hashMemoryIdle = 10 * time.Second

func takeHashBuffer() *argon2.Buffer {
	hashMemory.Lock()
	defer hashMemory.Unlock()
	if n := len(hashMemory.free); n > 0 {
		b := hashMemory.free[n-1]
		hashMemory.free = hashMemory.free[:n-1]
		return b
	}
	return new(argon2.Buffer)
}

func putHashBuffer(b *argon2.Buffer) {
	hashMemory.Lock()
	defer hashMemory.Unlock()
	hashMemory.free = append(hashMemory.free, b)
	if hashMemory.idle == nil {
		hashMemory.idle = time.AfterFunc(hashMemoryIdle, releaseHashBuffers)
	} else {
		hashMemory.idle.Reset(hashMemoryIdle)
	}
}

func releaseHashBuffers() {
	hashMemory.Lock()
	defer hashMemory.Unlock()
	clear(hashMemory.free)
	hashMemory.free = hashMemory.free[:0]
}

// argonKey computes an argon2id key in one of the hashSlots, or gives up
// waiting for one when ctx ends (the client left, or its deadline passed).
func argonKey(ctx context.Context, password, salt []byte, t, m uint32, p uint8, n uint32) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-hashSlots }()
	buf := takeHashBuffer()
	defer putHashBuffer(buf)
	return argon2.IDKeyBuffer(buf, password, salt, t, m, p, n), nil
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// HashPassword returns an argon2id hash in the PHC string format, waiting
// for a hash slot as long as it takes (startup, tools).
func HashPassword(password string) string {
	hash, _ := hashPassword(context.Background(), password)
	return hash
}

// hashPassword is HashPassword for a request: it gives up waiting for a hash
// slot when ctx ends (its deadline passed or the client left).
func hashPassword(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	key, err := argonKey(ctx, []byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	return phc(salt, key), nil
}

// phc formats salt and key as an argon2id PHC string with this package's parameters.
func phc(salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// dummyHash is checked against when the email is unknown, so a login takes as
// long for an unknown email as for a wrong password. It has a real hash's
// parameters but a random salt and key (no password matches it), so making it
// needs no argon2 computation, and no wait for a hash slot without deadline.
var dummyHash = sync.OnceValue(func() string {
	b := make([]byte, 16+argonKeyLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return phc(b[:16], b[16:])
})

// CheckPassword reports whether password matches an argon2id PHC hash, in
// constant time. It is false when ctx ends before a hash slot frees.
func CheckPassword(ctx context.Context, hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 256*1024 || t > 10 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got, err := argonKey(ctx, []byte(password), salt, t, m, p, uint32(len(want)))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// refused is the answer to a failed sign-in: ErrUnauthorized, unless the
// request's deadline passed while it waited for a hash slot (503, not a
// wrong password).
func refused(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	return ErrUnauthorized
}

// NormalizeEmail lowercases and trims an email address and checks its form.
func NormalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 || !strings.Contains(email, "@") {
		return "", Invalid("email", "must be an email address like name@example.com")
	}
	return email, nil
}

// ValidatePassword checks a new password's strength.
func ValidatePassword(password string) error {
	if len(password) < MinPasswordLen {
		return Invalid("password", fmt.Sprintf("must be at least %d characters", MinPasswordLen))
	}
	if len(password) > 1024 {
		return Invalid("password", "is too long")
	}
	return nil
}

// CreateUser adds a user. An empty password leaves the account without one
// (it cannot log in until a password is set). A taken email is ErrConflict.
func CreateUser(ctx context.Context, db bun.IDB, email, password string, isSA bool, by Actor) (*User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	u := &User{Email: email, IsSA: isSA}
	if password != "" {
		if err := ValidatePassword(password); err != nil {
			return nil, err
		}
		if u.PasswordHash, err = hashPassword(ctx, password); err != nil {
			return nil, err
		}
	}
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(u).Returning("*").Exec(ctx); err != nil {
			return translate(err, "create user")
		}
		return Audit(ctx, tx, uuid.Nil, by, "user.created", "user", u.ID.String(), map[string]any{"email": email, "isSa": isSA})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// GetUser returns a user by id, or ErrNotFound.
func GetUser(ctx context.Context, db bun.IDB, id uuid.UUID) (*User, error) {
	u := new(User)
	err := db.NewSelect().Model(u).Where("id = ?", id).Scan(ctx)
	return u, translate(err, "get user")
}

// Authenticate checks an email and password. Every failure is ErrUnauthorized
// (unknown email, wrong password, no password set, disabled account) and takes
// about the same time. On success it records the login in the audit log.
func Authenticate(ctx context.Context, db bun.IDB, email, password string, by Actor) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	u := new(User)
	err := sql.ErrNoRows // an email no row can hold (NUL, invalid UTF-8) is unknown
	if utf8.ValidString(email) && !strings.ContainsRune(email, 0) {
		err = db.NewSelect().Model(u).Where("email = ?", email).Scan(ctx)
	}
	if err != nil {
		if err = translate(err, "find user"); !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		CheckPassword(ctx, dummyHash(), password)
		return nil, refused(ctx)
	}
	if u.PasswordHash == "" || !CheckPassword(ctx, u.PasswordHash, password) || u.DisabledAt != nil {
		if u.PasswordHash == "" {
			CheckPassword(ctx, dummyHash(), password)
		}
		return nil, refused(ctx)
	}
	by.Type, by.ID, by.Label = "user", u.ID.String(), u.Email
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model(u).Set("last_login_at = now()").WherePK().Returning("last_login_at").Exec(ctx); err != nil {
			return translate(err, "record login")
		}
		return Audit(ctx, tx, uuid.Nil, by, "user.login", "user", u.ID.String(), nil)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UserRole returns the user's role in org: "" when not a member.
func UserRole(ctx context.Context, db bun.IDB, user, org uuid.UUID) (string, error) {
	var role string
	err := db.NewSelect().Model((*Membership)(nil)).Column("role").
		Where("org_id = ? AND user_id = ?", org, user).Scan(ctx, &role)
	if err = translate(err, "user role"); errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return role, err
}

// orgAndRole returns the org of the row id of model's table and user's role
// in that org ("" when not a member), in one statement; ErrNotFound when
// there is no such row.
func orgAndRole(ctx context.Context, db bun.IDB, model any, id, user uuid.UUID, what string) (uuid.UUID, string, error) {
	var org uuid.UUID
	var role sql.NullString
	err := db.NewSelect().Model(model).Column("org_id").
		ColumnExpr("(SELECT role FROM memberships AS m WHERE m.org_id = ?TableAlias.org_id AND m.user_id = ?)", user).
		Where("?TableAlias.id = ?", id).Scan(ctx, &org, &role)
	return org, role.String, translate(err, what)
}

// AddMember makes user a member of org with role.
func AddMember(ctx context.Context, db bun.IDB, org, user uuid.UUID, role string, by Actor) error {
	if role != RoleAdmin && role != RoleViewer {
		return Invalid("role", "must be admin or viewer")
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&Membership{OrgID: org, UserID: user, Role: role}).Exec(ctx); err != nil {
			return translate(err, "add member")
		}
		return Audit(ctx, tx, org, by, "member.added", "user", user.String(), map[string]any{"role": role})
	})
}

// EnsureBootstrapSA creates the first platform admin when no platform admin
// exists yet. When password is empty it generates one and returns it (to be
// shown once); it returns "" when nothing was created. The first start also
// creates a first organization with that admin as its admin.
func EnsureBootstrapSA(ctx context.Context, db bun.IDB, email, password string) (created *User, generated string, err error) {
	n, err := db.NewSelect().Model((*User)(nil)).Where("is_sa").Count(ctx)
	if err != nil || n > 0 {
		return nil, "", translate(err, "count platform admins")
	}
	if password == "" {
		generated = RandomBase62(24)
		password = generated
	}
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Serialise with another server starting at the same moment.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7204118306)"); err != nil {
			return err
		}
		if n, err := tx.NewSelect().Model((*User)(nil)).Where("is_sa").Count(ctx); err != nil || n > 0 {
			if err == nil {
				generated = ""
			}
			return err
		}
		u, err := CreateUser(ctx, tx, email, password, true, System)
		if err != nil {
			return err
		}
		created = u
		if orgs, err := CountOrgs(ctx, tx); err != nil || orgs > 0 {
			return err
		}
		_, err = CreateOrg(ctx, tx, "My organization", DefaultColor, &u.ID, System)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if created == nil {
		generated = ""
	}
	return created, generated, nil
}
