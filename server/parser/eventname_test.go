package parser

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// eventNameByUnmarshal is how validate checked an EVENT payload before
// eventName: decode the whole array, then its first element; except that
// a null name was taken for "" and is refused now, as socket.io-parser
// does.
func eventNameByUnmarshal(data []byte) (string, int) {
	var arr []json.RawMessage
	if json.Unmarshal(data, &arr) != nil || len(arr) == 0 {
		return "", notArray
	}
	if string(arr[0]) == "null" {
		return "", badName
	}
	var name string
	if json.Unmarshal(arr[0], &name) == nil {
		return name, stringName
	}
	var num float64
	if json.Unmarshal(arr[0], &num) == nil {
		return "", numberName
	}
	return "", badName
}

var eventNameSeeds = []string{
	`["chat",1]`, ` [ "chat" ] `, `[]`, `[ ]`, `[1]`, `[-1.5e3,"x"]`, `[{}]`, `[[1]]`, `[true]`, `[null]`,
	`["a\"b"]`, `["\u0063onnect"]`, `["caf\u00e9",{"x":[1,2]}]`, `["\\"]`, `["",2]`, `[""]`, `{"a":1}`, `"x"`, `1`,
	"[\"\\n\"]", `["connect"]`, `["newListener"]`,
}

// TestEventNameMatchesUnmarshal: eventName classifies every valid payload
// as decoding the whole array does.
func TestEventNameMatchesUnmarshal(t *testing.T) {
	for _, s := range eventNameSeeds {
		nb, kind := eventName([]byte(s))
		name := string(nb)
		wname, wkind := eventNameByUnmarshal([]byte(s))
		if name != wname || kind != wkind {
			t.Errorf("%s: (%q, %d), want (%q, %d)", s, name, kind, wname, wkind)
		}
	}
}

// TestEventValidationAllocations: validating an event allocates a constant
// amount, not one value per array element.
func TestEventValidationAllocations(t *testing.T) {
	p := &Packet{Type: Event, Data: json.RawMessage(`["join",1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]`)}
	if n := testing.AllocsPerRun(100, func() { validate(p) }); n > 0 {
		t.Fatalf("%v allocations per validation", n)
	}
}

func FuzzEventName(f *testing.F) {
	for _, s := range eventNameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // eventName runs on valid JSON only
		}
		nb, kind := eventName(data)
		name := string(nb)
		wname, wkind := eventNameByUnmarshal(data)
		if !utf8.ValidString(name) {
			// json.Unmarshal replaces invalid UTF-8 with U+FFFD; the
			// name is not a reserved one either way
			name, wname = "", ""
		}
		if name != wname || kind != wkind {
			t.Fatalf("%q: (%q, %d), want (%q, %d)", data, name, kind, wname, wkind)
		}
	})
}
