// Package jwtauth gives clients of a server.Server signed room access: a
// client connects with a JSON Web Token, the server verifies it, joins the
// socket to the rooms the token lists, and lets the application check
// which rooms the client may join or publish to.
//
// # Where the token travels
//
// The client sends the token in the Socket.IO auth payload, as
// {"token": "<JWT>"} (socket.io's io(url, {auth: {token}}),
// python-socketio's connect(url, auth={"token": ...})). When the auth
// payload has no "token", an "Authorization: Bearer <JWT>" header of the
// Engine.IO handshake is used instead (clients that can set headers:
// python-socketio's headers=, socket.io's extraHeaders on polling). The
// auth payload wins when both are present. A token in the query string is
// not accepted: query strings end up in access logs.
//
// # Algorithms and keys
//
// A Verifier accepts only the algorithms of its keys: HS256 for NewHS256's
// secret; RS256 and ES256 (P-256) for the public keys of a JWKS
// (LoadJWKS, ParseJWKS). A token whose header names another algorithm
// ("none", HS256 for a JWKS verifier, RS256 for a secret, RS384, PS256,
// ...) is refused before any key is used, so an RSA public key can never
// be used as an HMAC secret.
//
// # Claims
//
//   - sub: the user id (ClaimSet.Subject).
//   - rooms: rooms the socket joins at connect (OnConnect, JoinRooms).
//   - allow: glob patterns of the rooms the client may join or publish to
//     (Allowed), with path.Match's syntax: "*" matches any run of
//     characters except "/", "?" one character except "/", "[a-z]" a
//     class, "\\" escapes; the whole room name must match. So "news/*"
//     allows "news/sport" but neither "news" nor "news/sport/live"; "*"
//     allows every room without a "/". A token with a malformed pattern is
//     refused. The rooms of "rooms" are joined, not allowed: list them in
//     "allow" too if the client may join them again or publish to them.
//   - exp: required by default (WithoutExpiry makes it optional); checked
//     at connect, and by Allowed afterwards (false once expired). With
//     Verifier.DisconnectExpired, a socket whose token expires is warned
//     (EventTokenExpiring), then sent EventTokenExpired and disconnected
//     from its namespace, unless its client sent a fresh token of the same
//     sub before (EventRefreshToken, Expiry.Refresh). Without it, a
//     connected socket stays connected and is just allowed nothing more.
//   - nbf, iat, iss, aud: checked when present (WithIssuer and
//     WithAudience make iss and aud required).
//
// # Key rotation
//
// A verifier of a JWKS file (LoadJWKS) reads it again with Reload, and
// Watch reloads it whenever it changes. A file that is not a valid JWKS
// leaves the keys as they were (the error says why); keys removed from the
// file refuse the connections that come after; sockets already connected
// stay.
//
// # Refusals
//
// A connection without a token, with an invalid one or with an expired
// one is refused with CONNECT_ERROR; its message starts with
// "missing token", "invalid token: <why>" or "expired token", and its
// data is {"reason": "missing"}, {"reason": "invalid"} or
// {"reason": "expired"}.
package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/siobridge/siobridge/server"
)

// Limits.
const (
	// DefaultMaxTokenBytes bounds a token's length (WithMaxTokenBytes);
	// longer tokens are refused before they are decoded.
	DefaultMaxTokenBytes = 8 << 10
	// MaxRoomBytes bounds the room names that Allowed matches against the
	// allow patterns: longer names are not allowed, so that a client's
	// room name costs at most MaxRoomBytes times the patterns' size.
	MaxRoomBytes = 512
	// MinSecretBytes is the shortest HS256 secret NewHS256 accepts: the
	// size of the hash, as RFC 7518 (3.2) requires.
	MinSecretBytes = 32
)

// Errors wrapped by Verify's errors, one per kind of refusal.
var (
	ErrMissingToken = errors.New("missing token")
	ErrInvalidToken = errors.New("invalid token")
	ErrExpiredToken = errors.New("expired token")
)

// ClaimSet is what a verified token says. It is attached to the socket
// (server.Socket.Data) by Middleware and OnConnect; Claims returns it.
type ClaimSet struct {
	// Rooms are joined at connect.
	Rooms []string `json:"rooms,omitempty"`
	// Allow are the glob patterns of the rooms the client may join or
	// publish to (see the package documentation).
	Allow []string `json:"allow,omitempty"`
	// RegisteredClaims holds sub (Subject, the user id), exp (ExpiresAt)
	// and the other registered claims.
	jwt.RegisteredClaims

	leeway time.Duration
	v      *Verifier // that verified the token
}

// Allows reports whether room matches one of the allow patterns (whether
// the token has expired is not checked here: see Allowed).
func (c *ClaimSet) Allows(room string) bool {
	if len(room) > MaxRoomBytes {
		return false
	}
	for _, p := range c.Allow {
		if ok, _ := path.Match(p, room); ok {
			return true
		}
	}
	return false
}

// Expired reports whether the token's exp is past at now (with the
// verifier's leeway). A token without exp never expires.
func (c *ClaimSet) Expired(now time.Time) bool {
	d, ok := c.deadline()
	return ok && now.After(d)
}

// deadline is when the token expires (exp plus the leeway); false for a
// token without exp.
func (c *ClaimSet) deadline() (time.Time, bool) {
	if c.ExpiresAt == nil {
		return time.Time{}, false
	}
	return c.ExpiresAt.Add(c.leeway), true
}

// Option configures a Verifier.
type Option func(*options)

type options struct {
	noExpiry bool
	leeway   time.Duration
	issuer   string
	audience string
	maxToken int
}

// WithoutExpiry accepts tokens without exp (they are required by
// default). A token with exp is still refused once it has expired.
func WithoutExpiry() Option { return func(o *options) { o.noExpiry = true } }

// WithLeeway tolerates clock skew between the token's issuer and the
// server: exp, nbf and iat are checked with d of margin (default none).
func WithLeeway(d time.Duration) Option { return func(o *options) { o.leeway = d } }

// WithIssuer requires the iss claim to be iss.
func WithIssuer(iss string) Option { return func(o *options) { o.issuer = iss } }

// WithAudience requires the aud claim to contain aud.
func WithAudience(aud string) Option { return func(o *options) { o.audience = aud } }

// WithMaxTokenBytes bounds a token's length (default DefaultMaxTokenBytes).
func WithMaxTokenBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxToken = n
		}
	}
}

// Verifier verifies tokens with one secret or one set of public keys. It
// is safe for concurrent use. The keys of a LoadJWKS verifier can be
// replaced while it is in use (Reload, Watch).
type Verifier struct {
	popts    []jwt.ParserOption // without the methods, which follow the keys
	leeway   time.Duration
	maxToken int
	keys     atomic.Pointer[keySet]

	jwks jwksFile // LoadJWKS's file (Reload, Watch)
}

// keySet is what a Verifier verifies with: a parser that accepts only the
// algorithms of the keys, and the function that picks the key of a token.
type keySet struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	kids    []string
}

func newVerifier(o options) *Verifier {
	popts := []jwt.ParserOption{jwt.WithLeeway(o.leeway)}
	if !o.noExpiry {
		popts = append(popts, jwt.WithExpirationRequired())
	}
	if o.issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.issuer))
	}
	if o.audience != "" {
		popts = append(popts, jwt.WithAudience(o.audience))
	}
	return &Verifier{popts: popts, leeway: o.leeway, maxToken: o.maxToken}
}

// buildOptions applies opts to the defaults.
func buildOptions(opts []Option) options {
	o := options{maxToken: DefaultMaxTokenBytes}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// setKeys makes v verify with keyFunc, accepting only the algorithms methods.
func (v *Verifier) setKeys(methods []string, keyFunc jwt.Keyfunc, kids []string) {
	popts := append([]jwt.ParserOption{jwt.WithValidMethods(methods)}, v.popts...)
	v.keys.Store(&keySet{parser: jwt.NewParser(popts...), keyFunc: keyFunc, kids: kids})
}

// NewHS256 returns a Verifier of HS256 tokens signed with secret (at least
// MinSecretBytes bytes). It accepts no other algorithm.
func NewHS256(secret []byte, opts ...Option) (*Verifier, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("jwtauth: an HS256 secret needs at least %d bytes, got %d", MinSecretBytes, len(secret))
	}
	key := append([]byte(nil), secret...)
	v := newVerifier(buildOptions(opts))
	v.setKeys([]string{"HS256"}, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("unexpected algorithm %s", t.Method.Alg())
		}
		return key, nil
	}, nil)
	return v, nil
}

// Verify checks token and returns its claims. Its errors wrap
// ErrMissingToken (empty token), ErrExpiredToken or ErrInvalidToken, and
// say why.
func (v *Verifier) Verify(token string) (*ClaimSet, error) {
	if token == "" {
		return nil, ErrMissingToken
	}
	if len(token) > v.maxToken {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, v.maxToken)
	}
	ks := v.keys.Load()
	c := &ClaimSet{leeway: v.leeway, v: v}
	if _, err := ks.parser.ParseWithClaims(token, c, ks.keyFunc); err != nil {
		return nil, classify(err)
	}
	for _, p := range c.Allow {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: malformed allow pattern %q", ErrInvalidToken, p)
		}
	}
	return c, nil
}

// classify turns the parser's error into one of ours, with a short reason.
func classify(err error) error {
	var why string
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpiredToken
	case errors.Is(err, jwt.ErrTokenMalformed):
		why = "malformed: " + detail(err, jwt.ErrTokenMalformed)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		why = "missing a required claim (exp, iss or aud)"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		why = "not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		why = "issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		why = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		why = "wrong audience"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		why = "no key for it: " + detail(err, jwt.ErrTokenUnverifiable)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		why = "bad signature or algorithm: " + detail(err, jwt.ErrTokenSignatureInvalid)
	default:
		why = err.Error()
	}
	return fmt.Errorf("%w: %s", ErrInvalidToken, why)
}

// detail is err's message without the parser's category prefix.
func detail(err, category error) string {
	msg := strings.TrimPrefix(err.Error(), category.Error()+": ")
	return strings.TrimPrefix(msg, "error while executing keyfunc: ")
}

// tokenOf finds the token of a connection: the auth payload's "token",
// else the handshake's Authorization: Bearer header.
func tokenOf(s *server.Socket, auth json.RawMessage) (string, error) {
	var a map[string]json.RawMessage
	if len(auth) > 0 && string(auth) != "null" {
		if err := json.Unmarshal(auth, &a); err != nil {
			return "", fmt.Errorf("%w: the auth payload is not an object", ErrInvalidToken)
		}
	}
	if raw, ok := a["token"]; ok && string(raw) != "null" {
		var tok string
		if err := json.Unmarshal(raw, &tok); err != nil {
			return "", fmt.Errorf("%w: \"token\" is not a string", ErrInvalidToken)
		}
		return tok, nil
	}
	if r := s.Request(); r != nil {
		h := r.Header.Get("Authorization")
		if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			return strings.TrimSpace(h[7:]), nil
		}
	}
	return "", nil
}

// refusal is the CONNECT_ERROR of a Verify error.
func refusal(err error) error {
	return &server.ConnectError{Message: err.Error(), Data: map[string]string{"reason": reasonOf(err)}}
}

// reasonOf is the reason clients are told for a refused token: missing,
// expired, subject (a refresh with another sub's token) or invalid.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrMissingToken):
		return "missing"
	case errors.Is(err, ErrExpiredToken):
		return "expired"
	case errors.Is(err, ErrWrongSubject):
		return "subject"
	}
	return "invalid"
}

// Middleware returns a connect middleware (server.Namespace.Use) that
// refuses connections without a valid token and attaches the claims of
// the others to their socket (Claims). It does not join the token's
// rooms: the socket is not in its namespace yet while middlewares run;
// call JoinRooms from the connect handler, or use OnConnect instead.
func (v *Verifier) Middleware() func(s *server.Socket, auth json.RawMessage) error {
	return func(s *server.Socket, auth json.RawMessage) error {
		tok, err := tokenOf(s, auth)
		if err == nil {
			var c *ClaimSet
			if c, err = v.Verify(tok); err == nil {
				s.SetData(c)
				return nil
			}
		}
		return refusal(err)
	}
}

// OnConnect returns a connect handler (server.Namespace.OnConnect) that
// verifies the token as Middleware does, joins the socket to the token's
// rooms, then runs next (which may be nil) and returns its error.
func (v *Verifier) OnConnect(next func(s *server.Socket, auth json.RawMessage) error) func(s *server.Socket, auth json.RawMessage) error {
	mw := v.Middleware()
	return func(s *server.Socket, auth json.RawMessage) error {
		if err := mw(s, auth); err != nil {
			return err
		}
		JoinRooms(s)
		if next != nil {
			return next(s, auth)
		}
		return nil
	}
}

// Claims returns the claims attached to s by Middleware or OnConnect, or
// nil (no token verified, or s.SetData replaced them).
func Claims(s *server.Socket) *ClaimSet {
	c, _ := s.Data().(*ClaimSet)
	return c
}

// JoinRooms joins s to the rooms of its token (nothing without claims).
func JoinRooms(s *server.Socket) {
	if c := Claims(s); c != nil && len(c.Rooms) > 0 {
		s.Join(c.Rooms...)
	}
}

// Allowed reports whether the client of s may join or publish to room:
// its token was verified, has not expired since, and one of its allow
// patterns matches room. It is false for sockets without claims: checks
// fail closed.
func Allowed(s *server.Socket, room string) bool {
	c := Claims(s)
	return c != nil && !c.Expired(time.Now()) && c.Allows(room)
}
