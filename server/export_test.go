package server

import "sort"

// NamespaceNames returns the names of srv's namespaces, for tests.
func NamespaceNames(srv *Server) []string {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	out := make([]string, 0, len(srv.nsps))
	for name := range srv.nsps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// MemberSubscriptions returns how many subscriptions srv's cluster member
// wants and holds, for tests.
func MemberSubscriptions(srv *Server) (want, live int) {
	m := srv.member
	if m == nil {
		return 0, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.wanted), len(m.subs)
}

// MemberChannels returns the channels of the subscriptions srv's cluster
// member wants, sorted, for tests.
func MemberChannels(srv *Server) []string {
	m := srv.member
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, sub := range m.wanted {
		out = append(out, sub.Channels...)
	}
	sort.Strings(out)
	return out
}

// MemberSubscribed returns the channels of srv's established
// subscriptions (MemberChannels once the bus has confirmed them), sorted.
func MemberSubscribed(srv *Server) []string {
	m := srv.member
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for key := range m.subs {
		out = append(out, m.wanted[key].Channels...)
	}
	sort.Strings(out)
	return out
}

// MemberOrigin returns the identity of srv's cluster member on the bus
// (its dialect's Origin), for tests.
func MemberOrigin(srv *Server) string { return srv.member.d.Origin() }

// MaxCoalescedMsgs bounds the broadcasts a member publishes in one call.
const MaxCoalescedMsgs = maxCoalescedMsgs
