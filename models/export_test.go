package models

import "testing"

// HoldHashSlots takes every argon2 hash slot until the test ends, so a
// password hash or check started meanwhile can only wait.
func HoldHashSlots(t *testing.T) {
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(hashSlots) {
			<-hashSlots
		}
	})
}
