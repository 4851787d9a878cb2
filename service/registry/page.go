package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// MaxPageSize is the largest page ListPage and NodeResourceRegistry.ListPage
// return; larger page sizes are lowered to it.
const MaxPageSize = 1000

// Pagination is keyset pagination on the uuid: a page token names the last
// uuid of the previous page, and the next page is read from the view's uuid
// tree starting just after it. A page therefore costs the same however many nodes there are,
// and nodes registered or deleted between pages neither shift the pages nor
// appear twice.
//
// A token is base64url("1" <8 hex digits: hash of the filters> ":" <uuid>).
// The hash ties the token to the filters it was issued for, so a client
// changing filters mid-way gets ErrInvalid instead of a silently odd page.

// ListPage returns one page of the nodes List would return, and the token of
// the next page, empty when this is the last one. With opts.PageSize 0 it
// returns every matching node and no token. A page may be shorter than
// opts.PageSize (even empty) while the token is set, when filters leave
// nodes out.
//
// Errors: a *ValidationError (ErrInvalid) for an unknown status, a negative
// page size, or a page token that is malformed or was issued for other
// filters; store errors, wrapped.
func (r *NodeRegistry) ListPage(ctx context.Context, opts ListOptions) ([]Node, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	f, err := newNodeFilter(nil, opts.Status, opts.Metadata)
	if err != nil {
		return nil, "", err
	}
	if opts.PageSize < 0 {
		return nil, "", invalid("page_size", fmt.Sprintf("must not be negative, got %d", opts.PageSize))
	}
	if opts.PageSize == 0 && opts.PageToken == "" {
		nodes, err := r.List(ctx, opts)
		return nodes, "", err
	}
	filterHash := f.hash()
	after, err := parsePageToken("page_token", opts.PageToken, filterHash)
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
	out := make([]Node, 0, size)
	more := false
	visit := func(e *entry) bool {
		if e.uuid == after || e.node == nil || !f.matchEntry(e) {
			return true
		}
		if len(out) == size {
			more = true // a further match exists: this page is not the last
			return false
		}
		out = append(out, e.toNode())
		return true
	}
	// A point read under the lock for an unfiltered page; a clone for
	// filtered ones, which may walk far without holding the lock.
	if f.status == "" && len(f.metadata) == 0 {
		r.view.mu.RLock()
		r.view.byUUID.AscendGreaterOrEqual(&entry{uuid: after}, visit)
		r.view.mu.RUnlock()
	} else {
		tree, _ := r.view.snapshot()
		tree.AscendGreaterOrEqual(&entry{uuid: after}, visit)
	}
	if !more {
		return out, "", nil
	}
	return out, pageToken(filterHash, out[len(out)-1].UUID), nil
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
