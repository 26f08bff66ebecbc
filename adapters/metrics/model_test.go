package metrics

import "testing"

func TestNormalizeModel(t *testing.T) {
	cases := map[string]string{
		"":                               "none",
		"claude-sonnet-4-5-20250929":     "claude-sonnet-4-5",
		"claude-sonnet-4-5":              "claude-sonnet-4-5",
		"claude-sonnet-4-5-latest":       "claude-sonnet-4-5",
		"claude-sonnet-4-5@20250929":     "claude-sonnet-4-5",
		"claude-opus-4-1-20250805":       "claude-opus-4-1",
		"claude-opus-4-20250514":         "claude-opus-4",
		"claude-opus-4-0":                "claude-opus-4",
		"claude-sonnet-4-0":              "claude-sonnet-4",
		"claude-opus-4-5-20251101":       "claude-opus-4-5",
		"claude-haiku-4-5-20251001":      "claude-haiku-4-5",
		"claude-haiku-4-5-20991231":      "claude-haiku-4-5", // a snapshot this build does not list
		"claude-3-7-sonnet-20250219":     "claude-3-7-sonnet",
		"claude-3-7-sonnet-latest":       "claude-3-7-sonnet",
		"claude-3-5-sonnet-20241022":     "claude-3-5-sonnet",
		"claude-3-5-haiku-20241022":      "claude-3-5-haiku",
		"claude-3-opus-20240229":         "claude-3-opus",
		"claude-3-haiku-20240307":        "claude-3-haiku",
		"claude-opus-5":                  "claude-opus-5", // newer than this build, modern shape
		"claude-sonnet-5-1-20270101":     "claude-sonnet-5-1",
		"claude-haiku-7-20270101":        "claude-haiku-7",
		"claude-opus-4-1-extra":          "other",
		"claude-sonnet-4-5-2025092":      "other", // a 7-digit date
		"claude-sonnet-4-5-1-0":          "other",
		"claude-opus-44":                 "other",
		"claude-opus-":                   "other",
		"claude-opus-x":                  "other",
		"claude-":                        "other",
		"CLAUDE-SONNET-4-5":              "other",
		"gpt-4o":                         "other",
		"claude-sonnet-4-5; drop all":    "other",
		"claude-3-5-sonnet-20241022\x00": "other",
	}
	for in, want := range cases {
		if got := NormalizeModel(in); got != want {
			t.Errorf("NormalizeModel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeModelBounded(t *testing.T) {
	// Whatever the input, the label is a known family, a modern-shape id of
	// bounded length, or one of the fixed fallbacks.
	seen := map[string]bool{}
	for _, f := range []string{"opus", "sonnet", "haiku", "mystery"} {
		for major := 0; major < 12; major++ {
			for minor := -1; minor < 12; minor++ {
				id := "claude-" + f + "-" + itoa(major)
				if minor >= 0 {
					id += "-" + itoa(minor)
				}
				seen[NormalizeModel(id)] = true
				seen[NormalizeModel(id+"-20260101")] = true
			}
		}
	}
	if n := len(seen); n > 3*10*11+2 {
		t.Fatalf("%d distinct labels, want at most %d", n, 3*10*11+2)
	}
	if !seen["other"] {
		t.Fatal("two-digit versions and unknown families should map to other")
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

func TestNormalizeModelDoesNotAllocate(t *testing.T) {
	for _, in := range []string{"claude-sonnet-4-5-20250929", "claude-haiku-4-5-20991231", "claude-opus-5-20270101", "gpt-4o", ""} {
		if n := testing.AllocsPerRun(100, func() { _ = NormalizeModel(in) }); n != 0 {
			t.Errorf("NormalizeModel(%q): %v allocations, want 0", in, n)
		}
	}
}

func TestStatusClass(t *testing.T) {
	cases := map[int]string{0: "other", 99: "other", 100: "1xx", 200: "2xx", 204: "2xx", 304: "3xx", 404: "4xx", 429: "4xx", 499: "4xx", 500: "5xx", 529: "5xx", 599: "5xx", 600: "other", -1: "other"}
	for in, want := range cases {
		if got := StatusClass(in); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = StatusClass(529) }); n != 0 {
		t.Errorf("StatusClass allocates %v times", n)
	}
}
