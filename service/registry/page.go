package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// MaxPageSize is the largest page ListPage and NodeResourceRegistry.ListPage
// return; larger page sizes are lowered to it.
const MaxPageSize = 1000

// Pagination is keyset pagination on the order's key: a page token names
// the position (status, value and uuid; for the uuid order, the uuid) of
// the last node the previous page looked at, and the next page is read from
// the view's tree of that order starting just after it (see order.go). A
// page therefore costs the same however many nodes there are, and nodes
// registered or deleted between pages neither shift the pages nor appear
// twice. A node whose sort key changes between two pages (a heartbeat, in
// the heartbeat order) moves: it may be returned again, or not at all, like
// a row updated under any keyset cursor; nodes whose key did not change are
// returned exactly once.
//
// A token of the uuid order is base64url("1" <8 hex digits: hash of the
// filters and order> ":" <uuid>), as before orders existed (the hash of the
// default order and no search is unchanged, so old tokens stay valid); of
// the other orders base64url("2" <hash> ":" <rank> ":" <value> ":" <uuid>).
// The hash ties the token to the filters and order it was issued for, so a
// client changing them mid-way gets ErrInvalid instead of a silently odd
// page.

// MaxPageScan is the most nodes one page looks at when a filter no index
// serves (Metadata, Search) leaves nodes out: the page then ends early, with
// a token that continues after the last node looked at. Status filters and
// orders are indexed and never need it.
const MaxPageScan = 10 * MaxPageSize

// ListPage returns one page of the matching nodes in opts.OrderBy order,
// and the token of the next page, empty when this is the last one. With
// opts.PageSize 0 (and no token) it returns every matching node and no
// token. A page may be shorter than opts.PageSize (even empty) while the
// token is set, when Metadata or Search leave nodes out: a page looks at
// MaxPageScan nodes at most, so it costs O(page + log N) with indexed
// filters and O(MaxPageScan + log N) at most with the others.
//
// Errors: a *ValidationError (ErrInvalid) for an unknown status or order,
// a negative page size, a search too long, or a page token that is
// malformed or was issued for other filters or another order; store
// errors, wrapped.
func (r *NodeRegistry) ListPage(ctx context.Context, opts ListOptions) ([]Node, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	q, err := newListQuery(opts)
	if err != nil {
		return nil, "", err
	}
	if opts.PageSize < 0 {
		return nil, "", invalid("page_size", fmt.Sprintf("must not be negative, got %d", opts.PageSize))
	}
	all := opts.PageSize == 0 && opts.PageToken == ""
	c, err := q.parseToken("page_token", opts.PageToken)
	if err != nil {
		return nil, "", err
	}
	size := min(opts.PageSize, MaxPageSize)
	if size == 0 {
		size = MaxPageSize
	}
	if err := r.view.sync(ctx); err != nil {
		return nil, "", fmt.Errorf("list nodes: %w", err)
	}
	r.view.ensureOrder(q.order)
	if all {
		// Every match: walk clones of the trees without holding the lock.
		byUUID, sorted := r.view.sortedSnapshot()
		var out []Node
		for it := range sorted.walk(byUUID, q.order, q.desc, q.rank(), c) {
			if q.match(it.e) {
				out = append(out, it.e.toNode())
			}
		}
		return out, "", nil
	}
	out := make([]Node, 0, size)
	var last orderKey // where the last node looked at is in the order
	more := false
	r.view.mu.RLock()
	examined := 0
	for it := range r.view.sorted.walk(r.view.byUUID, q.order, q.desc, q.rank(), c) {
		if q.match(it.e) {
			if len(out) == size {
				more = true // a further match exists: this page is not the last
				break
			}
			out = append(out, it.e.toNode())
		}
		last = it.orderKey
		if examined++; examined == MaxPageScan {
			more = true // unknown: the next page will tell
			break
		}
	}
	r.view.mu.RUnlock()
	var token string
	if more {
		token = q.token(last)
	}
	return out, token, nil
}

// listQuery is ListOptions validated: the filters, the order, and the hash
// tying page tokens to them.
type listQuery struct {
	f      nodeFilter
	search search
	order  Order
	desc   bool
	hash   uint32
}

func newListQuery(opts ListOptions) (listQuery, error) {
	var q listQuery
	var err error
	if q.f, err = newNodeFilter(nil, opts.Status, opts.Metadata); err != nil {
		return q, err
	}
	if q.search, err = parseSearch("search", opts.Search); err != nil {
		return q, err
	}
	if opts.OrderBy < OrderUUID || opts.OrderBy > OrderMemory {
		return q, invalid("order_by", fmt.Sprintf("unknown order %d", int(opts.OrderBy)))
	}
	q.order, q.desc = opts.OrderBy, opts.Descending
	q.hash = q.f.hash()
	if q.order != OrderUUID || q.desc || len(q.search) > 0 {
		h := fnv.New32a()
		fmt.Fprintf(h, "%08x\x00%d\x00%t\x00%s", q.hash, q.order, q.desc, strings.Join(q.search, " "))
		q.hash = h.Sum32()
	}
	return q, nil
}

// rank is the status rank the query keeps, -1 for any.
func (q listQuery) rank() int {
	if q.f.status == "" {
		return -1
	}
	return int(rankOf(q.f.status))
}

// match is whether the node of e (which has one) passes the filters.
func (q listQuery) match(e *entry) bool { return q.f.matchEntry(e) && q.search.match(e) }

// token returns the token of the page after the node at k.
func (q listQuery) token(k orderKey) string {
	if q.order == OrderUUID {
		return pageToken(q.hash, k.uuid)
	}
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "2%08x:%d:%d:%s", q.hash, k.rank, k.value, k.uuid))
}

// parseToken returns where the page of token starts.
func (q listQuery) parseToken(field, token string) (cursor, error) {
	if token == "" {
		return cursor{first: true}, nil
	}
	if q.order == OrderUUID {
		id, err := parsePageToken(field, token, q.hash)
		return cursor{pos: orderKey{uuid: id}}, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return cursor{}, invalid(field, "malformed page token")
	}
	rest, ok := strings.CutPrefix(string(raw), fmt.Sprintf("2%08x:", q.hash))
	if !ok {
		if len(raw) > 10 && (raw[0] == '1' || raw[0] == '2') && raw[9] == ':' {
			return cursor{}, invalid(field, "the page token was issued for other filters or another order")
		}
		return cursor{}, invalid(field, "malformed page token")
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return cursor{}, invalid(field, "malformed page token")
	}
	rank, err1 := strconv.ParseUint(parts[0], 10, 8)
	value, err2 := strconv.ParseInt(parts[1], 10, 64)
	id, err3 := canonicalUUID(field, parts[2])
	if err1 != nil || err2 != nil || err3 != nil || id != parts[2] {
		return cursor{}, invalid(field, "malformed page token")
	}
	return cursor{pos: orderKey{rank: uint8(rank), value: value, uuid: id}}, nil
}

// nodeFilter is the filters of List, ListPage and Watch, validated.
type nodeFilter struct {
	uuids    map[string]bool // nil: any
	status   Status          // "": any
	metadata map[string]string
}

func newNodeFilter(uuids []string, status string, metadata map[string]string) (nodeFilter, error) {
	var f nodeFilter
	if status != "" {
		var err error
		if f.status, err = parseStatus("status_filter", status); err != nil {
			return f, err
		}
	}
	if err := checkUUIDCount("uuids", len(uuids)); err != nil {
		return f, err
	}
	if len(uuids) > 0 {
		f.uuids = make(map[string]bool, len(uuids))
		for i, s := range uuids {
			id, err := canonicalUUID(fmt.Sprintf("uuids[%d]", i), s)
			if err != nil {
				return f, err
			}
			f.uuids[id] = true
		}
	}
	f.metadata = metadata
	return f, nil
}

// sortedUUIDs returns the uuids filter in ascending order.
func (f nodeFilter) sortedUUIDs() []string {
	ids := make([]string, 0, len(f.uuids))
	for id := range f.uuids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// matchEntry reports whether the node of e (an entry with a node record)
// passes the filters, without assembling the Node.
func (f nodeFilter) matchEntry(e *entry) bool {
	if f.uuids != nil && !f.uuids[e.uuid] {
		return false
	}
	if f.status != "" && e.status() != f.status {
		return false
	}
	for k, v := range f.metadata {
		if got, ok := e.meta.lookup(k); !ok || got != v {
			return false
		}
	}
	return true
}

// hash identifies the status and metadata filters, for page tokens.
func (f nodeFilter) hash() uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00", f.status)
	keys := make([]string, 0, len(f.metadata))
	for k := range f.metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(f.metadata[k]), f.metadata[k])
	}
	return h.Sum32()
}

func pageToken(filterHash uint32, lastUUID string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "1%08x:%s", filterHash, lastUUID))
}

// parsePageToken returns the uuid a page token continues after; "" for an
// empty token.
func parsePageToken(field, token string, filterHash uint32) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", invalid(field, "malformed page token")
	}
	rest, ok := strings.CutPrefix(string(raw), fmt.Sprintf("1%08x:", filterHash))
	if !ok {
		if len(raw) > 10 && raw[0] == '1' && raw[9] == ':' {
			return "", invalid(field, "the page token was issued for other filters")
		}
		return "", invalid(field, "malformed page token")
	}
	id, err := canonicalUUID(field, rest)
	if err != nil || id != rest {
		return "", invalid(field, "malformed page token")
	}
	return id, nil
}
