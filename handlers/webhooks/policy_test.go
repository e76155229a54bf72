package webhooks

import (
	"net/netip"
	"testing"
)

func TestInternalAddresses(t *testing.T) {
	for _, tc := range []struct {
		ip       string
		internal bool
	}{
		{"127.0.0.1", true}, {"127.9.9.9", true}, {"::1", true}, {"::ffff:127.0.0.1", true},
		{"10.0.0.1", true}, {"172.16.5.4", true}, {"192.168.1.1", true}, {"100.64.0.1", true},
		{"169.254.169.254", true}, {"::ffff:169.254.169.254", true}, {"fe80::1", true}, {"fe80::1%eth0", true},
		{"fc00::1", true}, {"fd12:3456::1", true}, {"0.0.0.0", true}, {"::", true}, {"224.0.0.1", true},
		{"ff02::1", true}, {"255.255.255.255", true}, {"64:ff9b::7f00:1", true}, {"::127.0.0.1", true},
		{"64:ff9b:1::a00:1", true}, {"2002:a00:1::1", true}, {"::ffff:0:a00:1", true}, {"198.18.0.1", true}, {"192.0.0.8", true}, {"240.0.0.1", true},
		{"93.184.216.34", false}, {"2606:2800:220:1::1", false}, {"100.128.0.1", false}, {"172.32.0.1", false},
	} {
		if got := internalAddr(netip.MustParseAddr(tc.ip)); got != tc.internal {
			t.Errorf("internalAddr(%s) = %v, want %v", tc.ip, got, tc.internal)
		}
	}
	p := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	if !p.allowed(netip.MustParseAddr("10.20.3.4")) || !p.allowed(netip.MustParseAddr("::ffff:10.20.3.4")) || p.allowed(netip.MustParseAddr("10.21.0.1")) {
		t.Fatal("allow list not applied")
	}
}
