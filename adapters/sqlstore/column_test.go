package sqlstore

import (
	"reflect"
	"testing"
	"time"
)

func TestTimeScan(t *testing.T) {
	want := time.Date(2025, 3, 10, 12, 30, 0, 123456000, time.UTC)
	for _, src := range []any{want.UnixMicro(), want.In(time.FixedZone("east", 3600))} {
		var got Time
		if err := got.Scan(src); err != nil {
			t.Fatalf("Scan(%T): %v", src, err)
		}
		if tt := time.Time(got); !tt.Equal(want) || tt.Location() != time.UTC {
			t.Fatalf("Scan(%T) = %v, want %v in UTC", src, tt, want)
		}
	}
	var got Time
	if err := got.Scan("2025-03-10"); err == nil {
		t.Fatal("Scan(string) succeeded")
	}
}

func TestJSONList(t *testing.T) {
	if v, err := JSONList(nil).Value(); err != nil || v != "[]" {
		t.Fatalf("nil list = %v, %v; want [] (the column is NOT NULL)", v, err)
	}
	v, err := JSONList{"a", `"b"`}.Value()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []any{v, []byte(v.(string))} {
		var got JSONList
		if err := got.Scan(src); err != nil {
			t.Fatalf("Scan(%T): %v", src, err)
		}
		if !reflect.DeepEqual(got, JSONList{"a", `"b"`}) {
			t.Fatalf("round trip = %q", got)
		}
	}
	var got JSONList
	if err := got.Scan("{a,b}"); err == nil {
		t.Fatal("Scan of a non-JSON list succeeded")
	}
}
