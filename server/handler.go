package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/siobridge/siobridge/server/parser"
)

// Args, as the only result of a handler, is spread into several
// acknowledgement arguments (any other result is one argument).
type Args []any

var (
	argsType   = reflect.TypeFor[Args]()
	socketType = reflect.TypeFor[*Socket]()
	errorType  = reflect.TypeFor[error]()
	bytesType  = reflect.TypeFor[[]byte]()
	anyType    = reflect.TypeFor[any]()
)

// handler is an event handler analysed once at registration.
type handler struct {
	fn       reflect.Value
	in       []reflect.Type // parameters after *Socket
	variadic bool           // the last parameter is ...any
	nout     int            // results sent as the ack
	hasErr   bool
}

func newHandler(fn any) (*handler, error) {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, errors.New("handler is not a function")
	}
	if t.NumIn() == 0 || t.In(0) != socketType {
		return nil, errors.New("the first parameter must be *server.Socket")
	}
	h := &handler{fn: v, variadic: t.IsVariadic()}
	for i := 1; i < t.NumIn(); i++ {
		h.in = append(h.in, t.In(i))
	}
	if h.variadic && t.In(t.NumIn()-1).Elem() != anyType {
		return nil, errors.New("a variadic handler must end with ...any")
	}
	h.nout = t.NumOut()
	if h.nout > 0 && t.Out(h.nout-1) == errorType {
		h.hasErr = true
		h.nout--
	}
	return h, nil
}

// call decodes args into the parameters and runs the handler.
func (h *handler) call(s *Socket, args []json.RawMessage, atts [][]byte) ([]any, error) {
	in := []reflect.Value{reflect.ValueOf(s)}
	fixed := h.in
	if h.variadic {
		fixed = h.in[:len(h.in)-1]
	}
	for i, t := range fixed {
		pv := reflect.New(t)
		if i < len(args) {
			if err := decodeInto(pv, t, args[i], atts); err != nil {
				return nil, fmt.Errorf("argument %d: %w", i+1, err)
			}
		}
		in = append(in, pv.Elem())
	}
	if h.variadic {
		for i := len(fixed); i < len(args); i++ {
			v, err := plainArg(args[i], atts)
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i+1, err)
			}
			if v == nil {
				in = append(in, reflect.Zero(anyType))
			} else {
				in = append(in, reflect.ValueOf(v))
			}
		}
	}
	out := h.fn.Call(in)
	if h.hasErr {
		if err, _ := out[h.nout].Interface().(error); err != nil {
			return nil, err
		}
	}
	if h.nout == 1 && out[0].Type() == argsType {
		return []any(out[0].Interface().(Args)), nil
	}
	res := make([]any, h.nout)
	for i := 0; i < h.nout; i++ {
		res[i] = out[i].Interface()
	}
	return res, nil
}

func decodeInto(pv reflect.Value, t reflect.Type, raw json.RawMessage, atts [][]byte) error {
	switch t {
	case bytesType:
		if n, ok := parser.IsPlaceholder(raw); ok {
			if n < 0 || n >= len(atts) {
				return errors.New("placeholder without attachment")
			}
			pv.Elem().SetBytes(atts[n])
			return nil
		}
	case anyType:
		v, err := plainArg(raw, atts)
		if err != nil {
			return err
		}
		if v != nil {
			pv.Elem().Set(reflect.ValueOf(v))
		}
		return nil
	}
	return json.Unmarshal(raw, pv.Interface())
}
