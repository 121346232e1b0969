package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds of a JWKS.
const (
	// MaxJWKSBytes bounds a JWKS document (LoadJWKS, ParseJWKS).
	MaxJWKSBytes = 1 << 20
	// MinRSABits and MaxRSABits bound the RSA keys a JWKS may hold: shorter
	// keys are unsafe, longer ones make each verification slow.
	MinRSABits = 2048
	MaxRSABits = 8192
)

// jwk is one JSON Web Key (RFC 7517) as far as a verifier reads it.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// publicKey is a usable key of a JWKS.
type publicKey struct {
	kid string
	alg string // RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// LoadJWKS reads a JWKS file (a JSON Web Key Set, RFC 7517: {"keys":
// [...]}) and returns a Verifier of the tokens its keys signed; see
// ParseJWKS. The verifier remembers the file: Reload reads it again, and
// Watch reloads it whenever it changes.
func LoadJWKS(file string, opts ...Option) (*Verifier, error) {
	v := newVerifier(buildOptions(opts))
	v.jwks.path = file
	if err := v.load(); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseJWKS returns a Verifier of the tokens signed by the keys of a JWKS
// document (at most MaxJWKSBytes). It uses the RSA keys (kty "RSA", alg
// "RS256" or none, MinRSABits to MaxRSABits) for RS256 and the P-256 keys
// (kty "EC", crv "P-256", alg "ES256" or none) for ES256, and accepts only
// the algorithms of the keys it found. Keys for encryption (use "enc"),
// for other algorithms or of other types are skipped; a malformed key, a
// kid used twice, or a set without a usable key is an error. Private
// members of the keys are ignored.
//
// A token names its key with the kid header; a token without kid is
// verified with the only key of its algorithm, and refused when there are
// several.
func ParseJWKS(data []byte, opts ...Option) (*Verifier, error) {
	keys, err := parseKeys(data)
	if err != nil {
		return nil, err
	}
	v := newVerifier(buildOptions(opts))
	v.useKeys(keys)
	return v, nil
}

// useKeys makes v verify with keys from now on.
func (v *Verifier) useKeys(keys []publicKey) {
	var methods, kids []string
	for _, alg := range []string{"RS256", "ES256"} {
		for _, k := range keys {
			if k.alg == alg {
				methods = append(methods, alg)
				break
			}
		}
	}
	for _, k := range keys {
		kids = append(kids, k.kid)
	}
	v.setKeys(methods, func(t *jwt.Token) (any, error) { return pickKey(keys, t) }, kids)
}

// parseKeys returns the usable keys of a JWKS document; see ParseJWKS.
func parseKeys(data []byte) ([]publicKey, error) {
	if len(data) > MaxJWKSBytes {
		return nil, fmt.Errorf("jwtauth: JWKS larger than %d bytes", MaxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwtauth: JWKS: %w", err)
	}
	var keys []publicKey
	kids := map[string]bool{}
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("jwtauth: JWKS key %d: %w", i, err)
		}
		pk, err := parseKey(k)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if pk == nil {
			continue
		}
		if k.Kid != "" {
			if kids[k.Kid] {
				return nil, fmt.Errorf("jwtauth: JWKS: kid %q used twice", k.Kid)
			}
			kids[k.Kid] = true
		}
		keys = append(keys, *pk)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwtauth: JWKS has no RS256 or ES256 signing key")
	}
	return keys, nil
}

// pickKey returns the key of keys that verifies t.
func pickKey(keys []publicKey, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, hasKid := t.Header["kid"].(string)
	var found *publicKey
	for i, k := range keys {
		if k.alg != alg || (hasKid && k.kid != kid) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("no kid, and several %s keys", alg)
		}
		found = &keys[i]
	}
	if found == nil {
		if hasKid {
			return nil, fmt.Errorf("no %s key with kid %q", alg, kid)
		}
		return nil, fmt.Errorf("no %s key", alg)
	}
	return found.key, nil
}

// parseKey returns the verification key of k, nil for keys a verifier
// does not use, or an error for malformed keys.
func parseKey(k jwk) (*publicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, nil
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return nil, nil
		}
		n, err := b64int(k.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64int(k.E, "e")
		if err != nil {
			return nil, err
		}
		if bits := n.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("RSA modulus of %d bits, want %d to %d", bits, MinRSABits, MaxRSABits)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("RSA exponent out of range")
		}
		return &publicKey{kid: k.Kid, alg: "RS256", key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
			return nil, nil
		}
		x, err := b64fixed(k.X, "x", 32)
		if err != nil {
			return nil, err
		}
		y, err := b64fixed(k.Y, "y", 32)
		if err != nil {
			return nil, err
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return &publicKey{kid: k.Kid, alg: "ES256", key: pub}, nil
	}
	return nil, nil
}

func b64(s, name string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %q: %w", name, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("member %q missing", name)
	}
	return b, nil
}

func b64int(s, name string) (*big.Int, error) {
	b, err := b64(s, name)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

func b64fixed(s, name string, size int) ([]byte, error) {
	b, err := b64(s, name)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("member %q of %d bytes, want %d", name, len(b), size)
	}
	return b, nil
}
