package config

import "net/netip"

func parsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }
func parseAddr(s string) (netip.Addr, error)     { return netip.ParseAddr(s) }
