package repo

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"testing"
)

// shatteredPrefix is the first 320 bytes of shattered-1.pdf (SHAttered,
// 2017): the PDF header and the two near-collision blocks (bytes 192 to
// 319) on which sha1cd's detection fires. Taken from the message blocks in
// sha1cd's own test data (test/shattered1_m1s.go).
var shatteredPrefix = mustHex(
	"255044462d312e330a25e2e3cfd30a0a0a312030206f626a0a3c3c2f57696474682032203020522f4865696768742033203020522f547970652034203020522f" +
		"537562747970652035203020522f46696c7465722036203020522f436f6c6f7253706163652037203020522f4c656e6774682038203020522f42697473506572" +
		"436f6d706f6e656e7420383e3e0a73747265616d0affd8fffe00245348412d3120697320646561642121212121852fec092339759c39b1a1c63c4c97e1fffe01" +
		"7346dc9166b67e118f029ab621b2560ff9ca67cca8c7f85ba84c79030c2b3de218f86db3a90901d5df45c14f26fedfb3dc38e96ac22fe7bd728f0e45bce046d2" +
		"3c570feb141398bb552ef5a0a82be331fea48037b8b5d71f0e332edf93ac3500eb4ddc0decc1a864790c782c76215660dd309791d06bd0af3f98cda4bc4629b1")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestObjectHashDetectsCollisionAttack: the hash that names every object
// the agent pushes reports SHAttered's blocks. A git object of them does
// not: its header ("blob 320\x00") shifts the blocks off their 64-byte
// boundaries, and no colliding git object is at hand, so the test feeds
// the hash the raw bytes, as IndexPack feeds it an object's header and
// data.
func TestObjectHashDetectsCollisionAttack(t *testing.T) {
	d := newObjectHash()
	d.Write(shatteredPrefix)
	h, err := objectSum(d)
	if !errors.Is(err, ErrCollision) {
		t.Fatalf("no collision found in SHAttered's blocks: %s, %v", h, err)
	}
	// Found, sha1cd gives its hardened ("safe") hash, not SHA-1's: the
	// object could not be named as git would name it anyway.
	if plain := sha1.Sum(shatteredPrefix); h == Hash(plain) {
		t.Errorf("named %s, the plain SHA-1", h)
	}
	d = newObjectHash()
	d.Write(shatteredPrefix[:256]) // the first near-collision block alone
	if _, err := objectSum(d); err != nil {
		t.Errorf("half the attack: %v", err)
	}

	h, err = HashObject(Blob, shatteredPrefix)
	want := sha1.Sum(append([]byte("blob 320\x00"), shatteredPrefix...))
	if err != nil || h != Hash(want) {
		t.Errorf("the blob of the prefix: %s, %v; want %x and no collision (the header moves the blocks)", h, err, want)
	}
}

// BenchmarkObjectHash compares plain SHA-1 with the collision-detecting
// one on 8 KiB objects.
func BenchmarkObjectHash(b *testing.B) {
	data := make([]byte, 8<<10)
	b.Run("crypto-sha1", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			d := sha1.New()
			d.Write(data)
			d.Sum(nil)
		}
	})
	b.Run("sha1cd", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			d := newObjectHash()
			d.Write(data)
			if _, err := objectSum(d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
