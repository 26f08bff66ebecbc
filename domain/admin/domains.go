package admin

import (
	"strings"

	"github.com/relaystation/relay/domain"
)

// ParseDomainPatterns checks and normalises a key's allowed_domains: each a
// host name (app.example.com) or a wildcard over its subdomains
// (*.example.com). Patterns are lower-cased; schemes, ports, paths, empty
// labels and a bare "*." are refused, since none of them can match a host.
func ParseDomainPatterns(items []string) ([]string, error) {
	if len(items) > maxListItems {
		return nil, domain.Invalidf("allowed_domains may hold at most %d entries", maxListItems)
	}
	out := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, raw := range items {
		p := strings.ToLower(strings.TrimSpace(raw))
		if err := validDomainPattern(p); err != nil {
			return nil, domain.Invalidf("allowed_domains: %q is not a host name or *.host pattern: %s", raw, err.Message)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func validDomainPattern(p string) *domain.Error {
	switch {
	case p == "":
		return domain.Invalidf("empty")
	case strings.Contains(p, "://"):
		return domain.Invalidf("no scheme allowed")
	case strings.ContainsAny(p, "/?#"):
		return domain.Invalidf("no path allowed")
	case strings.Contains(p, ":"):
		return domain.Invalidf("no port allowed")
	case len(p) > 253:
		return domain.Invalidf("too long")
	}
	host := p
	if strings.HasPrefix(p, "*.") {
		host = p[2:]
		if host == "" {
			return domain.Invalidf("a wildcard needs a domain after it")
		}
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return domain.Invalidf("empty label")
		}
		if len(label) > 63 {
			return domain.Invalidf("label longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return domain.Invalidf("a label may not start or end with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				if c == '*' {
					return domain.Invalidf("'*' is allowed only as the first label")
				}
				return domain.Invalidf("invalid character %q", c)
			}
		}
	}
	return nil
}
