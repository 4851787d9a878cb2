package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/spear-next/sms/sqlkv"
)

// MaxPageSize is the largest page ListPage and NodeResourceRegistry.ListPage
// return; larger page sizes are lowered to it.
const MaxPageSize = 1000

// Pagination is keyset pagination on the uuid: a page token names the last
// uuid of the previous page, and the next page is a range read starting just
// after it. A page therefore costs the same however many nodes there are,
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

	out := make([]Node, 0, size)
	start := []byte(nodePrefix)
	if after != "" {
		start = append(nodeKey(after), 0) // the least key after node:<after>
	}
	end := sqlkv.PrefixEnd([]byte(nodePrefix))
	// The first read asks for one node more than the page, so an unfiltered
	// last page is recognised without a further read. Filtered pages read
	// on in batches until the page is full or the nodes run out.
	limit := size + 1
	for {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		entries, err := r.store.Range(ctx, sqlkv.RangeOptions{Start: start, End: end, Limit: limit})
		if err != nil {
			return nil, "", fmt.Errorf("list nodes: %w", err)
		}
		if len(entries) == 0 {
			return out, "", nil
		}
		hbs, err := readHeartbeats(ctx, r.store, entries)
		if err != nil {
			return nil, "", fmt.Errorf("list nodes: %w", err)
		}
		for _, e := range entries {
			id := uuidOf(e.Key, nodePrefix)
			nr, err := decode[nodeRecord](e.Key, e.Value)
			if err != nil {
				return nil, "", fmt.Errorf("list nodes: %w", err)
			}
			var hbp *heartbeatRecord
			if hb, ok := hbs[id]; ok {
				hbp = &hb
			}
			n := assembleNode(id, nr, hbp)
			if !f.match(n) {
				continue
			}
			if len(out) == size {
				// A further match exists: this page is not the last.
				return out, pageToken(filterHash, out[len(out)-1].UUID), nil
			}
			out = append(out, n)
		}
		if len(entries) < limit {
			return out, "", nil
		}
		if len(out) == size {
			return out, pageToken(filterHash, out[len(out)-1].UUID), nil
		}
		start = append(bytes.Clone(entries[len(entries)-1].Key), 0)
		limit = max(size-len(out), 64)
	}
}

// readHeartbeats reads the heartbeat records of the nodes in entries (node
// records in ascending key order) with one range read over their uuids.
func readHeartbeats(ctx context.Context, store sqlkv.Store, entries []sqlkv.Entry) (map[string]heartbeatRecord, error) {
	first := uuidOf(entries[0].Key, nodePrefix)
	last := uuidOf(entries[len(entries)-1].Key, nodePrefix)
	hbEntries, err := store.Range(ctx, sqlkv.RangeOptions{
		Start: heartbeatKey(first),
		End:   append(heartbeatKey(last), 0),
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]heartbeatRecord, len(hbEntries))
	for _, e := range hbEntries {
		hb, err := decode[heartbeatRecord](e.Key, e.Value)
		if err != nil {
			return nil, err
		}
		out[uuidOf(e.Key, heartbeatPrefix)] = hb
	}
	return out, nil
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

func (f nodeFilter) match(n Node) bool {
	if f.uuids != nil && !f.uuids[n.UUID] {
		return false
	}
	if f.status != "" && n.Status != f.status {
		return false
	}
	for k, v := range f.metadata {
		if got, ok := n.Metadata[k]; !ok || got != v {
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
