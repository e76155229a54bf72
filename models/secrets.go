package models

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"strings"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "ag_ak_"

// RandomBase62 returns n characters drawn uniformly from base62 with crypto/rand.
func RandomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := io.ReadFull(rand.Reader, buf); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the draw uniform.
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

// Hash returns the SHA-256 of a token, the only form in which tokens, keys and
// secrets are stored.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// SecretEqual compares two secrets in constant time.
func SecretEqual(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// IsBase62 reports whether s has exactly n base62 characters (n <= 0: any length ≥ 1).
func IsBase62(s string, n int) bool {
	if (n > 0 && len(s) != n) || s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

// NewAPIKey returns a fresh API key: the prefix and 40 base62 characters.
func NewAPIKey() string { return APIKeyPrefix + RandomBase62(40) }

// ValidAPIKeyFormat reports whether s looks like an API key (checked before any lookup).
func ValidAPIKeyFormat(s string) bool {
	rest, ok := strings.CutPrefix(s, APIKeyPrefix)
	return ok && len(rest) >= 40 && len(rest) <= 128 && IsBase62(rest, 0)
}

// Sealer encrypts small secrets (invite tokens) with AES-256-GCM so a database
// dump alone reveals nothing. Claim secrets are not sealed or derived: they
// are random and exist once, as their hash.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the encryption key from the server secret.
func NewSealer(secret []byte) (*Sealer, error) {
	key := sha256.Sum256(append([]byte("agentroster seal v1\x00"), secret...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; the nonce is prepended.
func (s *Sealer) Seal(plaintext string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return s.aead.Seal(nonce, nonce, []byte(plaintext), nil)
}

// Open decrypts what Seal produced.
func (s *Sealer) Open(sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed value too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], nil)
	return string(plain), err
}
