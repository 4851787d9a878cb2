package registry

import (
	"encoding/binary"
	"slices"
	"strings"
)

// A packed map is a map[string]string held by the view as one string:
// each pair, in ascending key order, as uvarint(len(key)) key
// uvarint(len(value)) value. A Go map of one pair costs about 300 bytes of
// heap; its packed form costs its bytes plus a 16-byte string header, which
// is most of what keeps the view of a million nodes small. Unpacking
// allocates the map a reader gets anyway (readers are given maps of their
// own), and filters match the packed form without unpacking.
type packedMap string

func packMap(m map[string]string) packedMap {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	size := 0
	for k, v := range m {
		keys = append(keys, k)
		size += len(k) + len(v) + 2*binary.MaxVarintLen32
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return packedMap(b)
}

// each calls fn with every pair in key order until fn returns false.
func (p packedMap) each(fn func(k, v string) bool) {
	s := string(p)
	for len(s) > 0 {
		k, rest := cut(s)
		v, rest := cut(rest)
		if !fn(k, v) {
			return
		}
		s = rest
	}
}

// cut splits off one length-prefixed string.
func cut(s string) (string, string) {
	n, w := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
	s = s[w:]
	return s[:n], s[n:]
}

// unpack returns the map, never nil.
func (p packedMap) unpack() map[string]string {
	m := make(map[string]string)
	p.each(func(k, v string) bool {
		m[k] = v
		return true
	})
	return m
}

// lookup returns the value of key.
func (p packedMap) lookup(key string) (string, bool) {
	var out string
	found := false
	p.each(func(k, v string) bool {
		switch strings.Compare(k, key) {
		case 0:
			out, found = v, true
			return false
		case 1:
			return false // keys are sorted: it is not there
		}
		return true
	})
	return out, found
}

// packer builds a packedMap from pairs handed to add (a records.MapSink)
// without making the map: in ascending key order, as protobuf records hold
// them, it appends each pair; pairs out of order (JSON records) are sorted
// by packing again at the end. Duplicate keys keep the last value, as a
// map would.
type packer struct {
	b          []byte
	key, keyTo int // the last key added is b[key:keyTo]
	unsorted   bool
}

func (p *packer) add(key, value []byte) {
	if len(p.b) > 0 && string(key) <= string(p.b[p.key:p.keyTo]) {
		p.unsorted = true
	}
	p.b = binary.AppendUvarint(p.b, uint64(len(key)))
	p.key = len(p.b)
	p.b = append(p.b, key...)
	p.keyTo = len(p.b)
	p.b = binary.AppendUvarint(p.b, uint64(len(value)))
	p.b = append(p.b, value...)
}

// packed returns what was added as a packedMap.
func (p *packer) packed() packedMap {
	if p.unsorted {
		return packMap(packedMap(p.b).unpack())
	}
	return packedMap(p.b)
}
