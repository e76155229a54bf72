package views

import "testing"

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1536: "1.5 KiB", 17179869184: "16 GiB", 549755813888: "512 GiB", 1 << 40: "1 TiB", 1000000000: "953.7 MiB",
	} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
