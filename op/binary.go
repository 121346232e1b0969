package op

// maxBinaryDepth bounds HasBinary's search, as the encoders bound nesting.
const maxBinaryDepth = 1000

// HasBinary reports whether the plain data tree v holds a []byte. A tree
// nested deeper than 1000 levels counts as holding one: the encoders that
// take this path refuse such depth with a clear error.
func HasBinary(v any) bool { return hasBinary(v, 0, nil) }

// HasBinaryIn is HasBinary for trees that also hold values of other
// container types: more(x) returns the children of such a value (and true),
// or false for a leaf.
func HasBinaryIn(v any, more func(any) ([]any, bool)) bool { return hasBinary(v, 0, more) }

func hasBinary(v any, depth int, more func(any) ([]any, bool)) bool {
	if depth > maxBinaryDepth {
		return true
	}
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e, depth+1, more) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBinary(e, depth+1, more) {
				return true
			}
		}
	default:
		if more == nil {
			return false
		}
		children, ok := more(v)
		if !ok {
			return false
		}
		for _, e := range children {
			if hasBinary(e, depth+1, more) {
				return true
			}
		}
	}
	return false
}
