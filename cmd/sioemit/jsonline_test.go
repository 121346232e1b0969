package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// refLine decodes a --batch line the way sioemit did before its own
// parser: encoding/json into a struct, then each argument as a
// command-line ARG. It rejects data after the object.
func refLine(line []byte) (batchLine, error) {
	var bl struct {
		Event     string            `json:"event"`
		Args      []json.RawMessage `json:"args"`
		To        []string          `json:"to"`
		Except    []string          `json:"except"`
		Namespace string            `json:"namespace"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bl); err != nil {
		return batchLine{}, err
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return batchLine{}, errSyntax
	}
	l := batchLine{event: bl.Event, to: bl.To, except: bl.Except, hasTo: bl.To != nil, hasExcept: bl.Except != nil, namespace: bl.Namespace}
	for _, raw := range bl.Args {
		v, err := parseArg(string(raw))
		if err != nil {
			return batchLine{}, err
		}
		l.args = append(l.args, v)
	}
	return l, nil
}

func sameLine(a, b batchLine) bool {
	return a.event == b.event && a.namespace == b.namespace && a.hasTo == b.hasTo && a.hasExcept == b.hasExcept &&
		len(a.to) == len(b.to) && len(a.except) == len(b.except) && len(a.args) == len(b.args) &&
		(len(a.to) == 0 || reflect.DeepEqual(a.to, b.to)) &&
		(len(a.except) == 0 || reflect.DeepEqual(a.except, b.except)) &&
		(len(a.args) == 0 || reflect.DeepEqual(a.args, b.args))
}

var lineSeeds = []string{
	`{"event":"tick","args":[{"n":0}],"to":["bench"]}`,
	`  {"event" : "a" , "args" : [ 1 , -2 , 3.5 , -0 , 1e3 , 1E-2 , 9223372036854775807 , 9223372036854775808 , 18446744073709551616 , -9223372036854775809 ] }  `,
	`{"event":"a","args":[123456789012345678, 1234567890123456789, -123456789012345678, 0.1, 100000000000000000000000.0]}`,
	`{"event":"a","args":["plain","esc\"\\\/\b\f\n\r\t","\u00e9\u4e2d\ud83d\ude00","\ud800 lone","\udc00\ud800","é中😀"]}`,
	`{"event":"a","args":[true,false,null,[],{},[[1],[2,[3]]],{"k":{"k":[{"x":null}]}}]}`,
	`{"event":"a","args":[{"$binary":"AQI="},{"$binary":"AQI=","x":1},[{"$binary":""}]]}`,
	`{"event":"a","to":[],"except":["s1","s2"],"namespace":"/chat"}`,
	`{"event":"a","to":null,"except":null,"namespace":null,"args":null}`,
	`{"event":"a","args":[1],"args":[2]}`,
	`{"event":"a","args":[{"k":1,"k":2}]}`,
	`{"event":"a","args":[{"k\n":"v\t","\u006b2":{"\u00e9":"\u00e8"}}]}`,
	"{\"event\":\"a\",\"args\":[\"bad \xff utf8\"]}",
	`{}`,
	`{"event":"a","args":[1,]}`,
	`{"event":"a",}`,
	`{"event":"a","args":[01]}`,
	`{"event":"a","args":[1.]}`,
	`{"event":"a","args":[.5]}`,
	`{"event":"a","args":[-]}`,
	`{"event":"a","args":["\x"]}`,
	`{"event":"a","args":["\u12"]}`,
	`{"event":"a","args":[tru]}`,
	`{"event":"a","args":[{"a"}]}`,
	`{"event":"a","args":[{1:2}]}`,
	`{"event":1}`,
	`{"event":"a","to":[1]}`,
	`{"event":"a"} x`,
	`["event"]`,
	`{"event":"a","args":["unterminated]}`,
	"{\"event\":\"a\",\"args\":[\"ctl\x01\"]}",
	`{"event":"a","args":[{"$binary":"not base64!"}]}`,
}

// TestLineParserMatchesEncodingJSON: every line the parser accepts
// decodes to what encoding/json (and the ARG rules) made of it before;
// the valid seeds are accepted.
func TestLineParserMatchesEncodingJSON(t *testing.T) {
	var p lineParser
	for _, s := range lineSeeds {
		var got batchLine
		err := p.parse([]byte(s), &got)
		want, refErr := refLine([]byte(s))
		switch {
		case err == nil && refErr != nil:
			t.Errorf("%s: accepted, encoding/json says %v", s, refErr)
		case err != nil && refErr == nil:
			t.Errorf("%s: refused (%v), encoding/json accepts it", s, err)
		case err == nil && !sameLine(got, want):
			t.Errorf("%s:\n got %#v\nwant %#v", s, got, want)
		}
	}
}

// FuzzLineParser: the parser never panics, and what it accepts decodes
// as encoding/json decodes it.
func FuzzLineParser(f *testing.F) {
	for _, s := range lineSeeds {
		f.Add(s)
	}
	var p, raw lineParser
	raw.raw = true
	f.Fuzz(func(t *testing.T, s string) {
		var got, gotRaw batchLine
		rawErr := raw.parse([]byte(s), &gotRaw)
		if rawErr == nil && gotRaw.argsJSON != nil && !json.Valid(gotRaw.argsJSON) {
			t.Fatalf("%q: raw mode took args %q, not JSON", s, gotRaw.argsJSON)
		}
		if err := p.parse([]byte(s), &got); err != nil {
			return
		}
		if rawErr != nil {
			t.Fatalf("%q: accepted, but not in raw mode: %v", s, rawErr)
		}
		if gotRaw.event != got.event || gotRaw.namespace != got.namespace || fmt.Sprint(gotRaw.to, gotRaw.except) != fmt.Sprint(got.to, got.except) {
			t.Fatalf("%q: raw mode read %#v, value mode %#v", s, gotRaw, got)
		}
		want, err := refLine([]byte(s))
		if err != nil {
			if strings.Contains(err.Error(), "nested") {
				return
			}
			t.Fatalf("%q: accepted, encoding/json says %v", s, err)
		}
		if !sameLine(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", s, got, want)
		}
	})
}

// TestRawArgs: in raw mode the args stay JSON text, unless they hold a
// binary argument; errors are the value mode's.
func TestRawArgs(t *testing.T) {
	p := lineParser{raw: true}
	var l batchLine
	for line, want := range map[string]string{
		`{"event":"e","args":[{"n":1}, "x"]}`: `[{"n":1}, "x"]`,
		`{"args": null ,"event":"e"}`:         `null`,
		`{"event":"e"}`:                       ``,
	} {
		if err := p.parse([]byte(line), &l); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if string(l.argsJSON) != want || l.args != nil {
			t.Errorf("%s: argsJSON %q args %v, want %q", line, l.argsJSON, l.args, want)
		}
	}
	if err := p.parse([]byte(`{"event":"e","args":["a",{"$binary":"AQI="}]}`), &l); err != nil {
		t.Fatal(err)
	}
	if l.argsJSON != nil || fmt.Sprint(l.args) != "[a [1 2]]" {
		t.Errorf("binary line: argsJSON %q args %v", l.argsJSON, l.args)
	}
	for _, bad := range []string{`{"event":"e","args":{"a":1}}`, `{"event":"e","args":"x"}`, `{"event":"e","args":[1,]}`, `{"event":"e","args":[` + strings.Repeat("[", 1002) + strings.Repeat("]", 1002) + `]}`} {
		if err := p.parse([]byte(bad), &l); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestLineParserReusesMaps: once warm, decoding a usual line allocates
// nothing: its maps are the last line's, cleared.
func TestLineParserReusesMaps(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	var p lineParser
	var l batchLine
	line := []byte(`{"event":"tick","args":[{"n":1},{"a":{"b":2}}],"to":["bench"]}`)
	p.parse(line, &l)
	if allocs := testing.AllocsPerRun(100, func() { p.parse(line, &l) }); allocs != 0 {
		t.Fatalf("%.1f allocations per line", allocs)
	}
	if fmt.Sprint(l.args) != "[map[n:1] map[a:map[b:2]]]" {
		t.Fatalf("args %v", l.args)
	}
}
