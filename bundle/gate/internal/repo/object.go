// Package repo reads and writes a bare git repository without a git binary:
// pack and loose objects, refs, the object walks that fetch and push need,
// pack generation that reuses the stored compressed data, and indexing of
// received packs. Only what the git gate needs is here; SHA-1 repositories
// only.
package repo

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"

	"github.com/pjbgf/sha1cd"
)

// Hash is a SHA-1 object name.
type Hash [20]byte

// Zero is the all-zero object name git uses for "no object".
var Zero Hash

// ParseHash parses 40 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 40 {
		return h, fmt.Errorf("invalid object name %q: want 40 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("invalid object name %q: %w", s, err)
	}
	return h, nil
}

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the all-zero name.
func (h Hash) IsZero() bool { return h == Zero }

// Type is an object type as stored in packs.
type Type int8

// The object types, numbered as packs number them (5 is unused).
const (
	Invalid  Type = 0
	Commit   Type = 1
	Tree     Type = 2
	Blob     Type = 3
	Tag      Type = 4
	OfsDelta Type = 6
	RefDelta Type = 7
)

func (t Type) String() string {
	switch t {
	case Commit:
		return "commit"
	case Tree:
		return "tree"
	case Blob:
		return "blob"
	case Tag:
		return "tag"
	case OfsDelta:
		return "ofs-delta"
	case RefDelta:
		return "ref-delta"
	}
	return "invalid"
}

func parseType(s []byte) Type {
	switch string(s) {
	case "commit":
		return Commit
	case "tree":
		return Tree
	case "blob":
		return Blob
	case "tag":
		return Tag
	}
	return Invalid
}

// ErrNotFound is wrapped when an object is missing.
var ErrNotFound = errors.New("object not found")

// ErrCorrupt is wrapped when stored or received data is not valid git data.
var ErrCorrupt = errors.New("corrupt object data")

// ErrCollision is wrapped when hashing an object shows the marks of a
// SHA-1 collision attack (the near-collision blocks of SHAttered and its
// kin, found by sha1cd's counter-cryptanalysis). git refuses such objects
// too: one could stand for another object of the same name.
var ErrCollision = errors.New("SHA-1 collision attack detected")

// HashObject returns the name of an object with this type and content; an
// error wraps ErrCollision.
func HashObject(t Type, data []byte) (Hash, error) {
	d := newObjectHash()
	d.Write(objectHeader(t, int64(len(data))))
	d.Write(data)
	return objectSum(d)
}

// newObjectHash starts an object's name: SHA-1 with collision detection.
// Pack and index checksums, which name nothing, use plain crypto/sha1.
func newObjectHash() hash.Hash { return sha1cd.New() }

// objectSum ends a hash begun with newObjectHash: the name, and an error
// wrapping ErrCollision when the data shows a collision attack.
func objectSum(d hash.Hash) (Hash, error) {
	var h Hash
	_, col := d.(sha1cd.CollisionResistantHash).CollisionResistantSum(h[:0])
	if col {
		return h, fmt.Errorf("%w in object %s", ErrCollision, h)
	}
	return h, nil
}

func objectHeader(t Type, size int64) []byte {
	b := make([]byte, 0, 32)
	b = append(b, t.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, size, 10)
	return append(b, 0)
}

// CommitInfo is what the walks need from a commit.
type CommitInfo struct {
	Tree    Hash
	Parents []Hash
	// Time is the committer time in seconds since the epoch.
	Time int64
}

// ParseCommit reads the header of a commit object.
func ParseCommit(data []byte) (CommitInfo, error) {
	var c CommitInfo
	seenTree := false
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return c, fmt.Errorf("%w: commit header without newline", ErrCorrupt)
		}
		line := data[:nl]
		data = data[nl+1:]
		if len(line) == 0 {
			break
		}
		key, val, _ := bytes.Cut(line, []byte{' '})
		switch string(key) {
		case "tree":
			h, err := ParseHash(string(val))
			if err != nil || seenTree {
				return c, fmt.Errorf("%w: bad tree line in commit", ErrCorrupt)
			}
			c.Tree, seenTree = h, true
		case "parent":
			h, err := ParseHash(string(val))
			if err != nil {
				return c, fmt.Errorf("%w: bad parent line in commit", ErrCorrupt)
			}
			c.Parents = append(c.Parents, h)
		case "committer":
			// "Name <email> 1700000000 +0100": the time is the second to last field.
			gt := bytes.LastIndexByte(val, '>')
			if gt >= 0 {
				f := bytes.Fields(val[gt+1:])
				if len(f) >= 1 {
					c.Time, _ = strconv.ParseInt(string(f[0]), 10, 64)
				}
			}
		}
	}
	if !seenTree {
		return c, fmt.Errorf("%w: commit has no tree", ErrCorrupt)
	}
	return c, nil
}

// TagInfo is what the walks need from an annotated tag.
type TagInfo struct {
	Object Hash
	Type   Type
}

// ParseTag reads the header of a tag object.
func ParseTag(data []byte) (TagInfo, error) {
	var t TagInfo
	var haveObj bool
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break
		}
		line := data[:nl]
		data = data[nl+1:]
		if len(line) == 0 {
			break
		}
		key, val, _ := bytes.Cut(line, []byte{' '})
		switch string(key) {
		case "object":
			h, err := ParseHash(string(val))
			if err != nil {
				return t, fmt.Errorf("%w: bad object line in tag", ErrCorrupt)
			}
			t.Object, haveObj = h, true
		case "type":
			t.Type = parseType(val)
		}
	}
	if !haveObj || t.Type == Invalid {
		return t, fmt.Errorf("%w: tag without object or type", ErrCorrupt)
	}
	return t, nil
}

// Tree entry modes git writes.
const (
	ModeTree    = 0o040000
	ModeBlob    = 0o100644
	ModeExec    = 0o100755
	ModeSymlink = 0o120000
	ModeGitlink = 0o160000
)

// TreeEntry is one entry of a tree object. Name aliases the tree's data.
type TreeEntry struct {
	Mode uint32
	Name []byte
	Hash Hash
}

// IsTree reports whether the entry is a subdirectory.
func (e TreeEntry) IsTree() bool { return e.Mode&0o170000 == ModeTree }

// IsGitlink reports whether the entry is a submodule commit, which is not
// stored in this repository.
func (e TreeEntry) IsGitlink() bool { return e.Mode&0o170000 == ModeGitlink }

// TreeIter iterates the entries of a tree object.
type TreeIter struct {
	data []byte
	err  error
}

// NewTreeIter iterates data, the content of a tree object.
func NewTreeIter(data []byte) *TreeIter { return &TreeIter{data: data} }

// Next returns the next entry; false at the end or on error (see Err).
func (it *TreeIter) Next() (TreeEntry, bool) {
	var e TreeEntry
	if len(it.data) == 0 || it.err != nil {
		return e, false
	}
	sp := bytes.IndexByte(it.data, ' ')
	if sp <= 0 || sp > 7 {
		it.err = fmt.Errorf("%w: bad tree entry mode", ErrCorrupt)
		return e, false
	}
	var mode uint32
	for _, c := range it.data[:sp] {
		if c < '0' || c > '7' {
			it.err = fmt.Errorf("%w: bad tree entry mode", ErrCorrupt)
			return e, false
		}
		mode = mode<<3 | uint32(c-'0')
	}
	rest := it.data[sp+1:]
	nul := bytes.IndexByte(rest, 0)
	if nul < 0 || len(rest) < nul+1+20 {
		it.err = fmt.Errorf("%w: truncated tree entry", ErrCorrupt)
		return e, false
	}
	e.Mode = mode
	e.Name = rest[:nul]
	copy(e.Hash[:], rest[nul+1:nul+21])
	it.data = rest[nul+21:]
	return e, true
}

// Err returns the parse error that ended the iteration, if any.
func (it *TreeIter) Err() error { return it.err }
