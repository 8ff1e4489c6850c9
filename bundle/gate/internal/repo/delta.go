package repo

import "fmt"

// deltaHeader reads a delta's source and target sizes and returns the
// offset of its first instruction.
func deltaHeader(d []byte) (src, dst uint64, n int, err error) {
	src, n1, ok := uvarint(d)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: bad delta header", ErrCorrupt)
	}
	dst, n2, ok := uvarint(d[n1:])
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: bad delta header", ErrCorrupt)
	}
	return src, dst, n1 + n2, nil
}

func uvarint(b []byte) (uint64, int, bool) {
	var v uint64
	var shift uint
	for i, c := range b {
		if shift > 63 {
			return 0, 0, false
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			return v, i + 1, true
		}
	}
	return 0, 0, false
}

// applyDelta rebuilds an object from its base and a git delta. maxSize
// bounds the declared result so that a tiny hostile delta cannot ask for
// gigabytes.
func applyDelta(base, delta []byte, maxSize int64) ([]byte, error) {
	src, dst, i, err := deltaHeader(delta)
	if err != nil {
		return nil, err
	}
	if src != uint64(len(base)) {
		return nil, fmt.Errorf("%w: delta expects a base of %d bytes, got %d", ErrCorrupt, src, len(base))
	}
	if maxSize > 0 && dst > uint64(maxSize) {
		return nil, fmt.Errorf("%w: a delta makes an object of %d bytes, more than the limit of %d", ErrTooLarge, dst, maxSize)
	}
	out := make([]byte, 0, dst)
	for i < len(delta) {
		op := delta[i]
		i++
		switch {
		case op&0x80 != 0:
			var off, size uint64
			for bit := uint(0); bit < 4; bit++ {
				if op&(1<<bit) != 0 {
					if i >= len(delta) {
						return nil, fmt.Errorf("%w: truncated delta copy", ErrCorrupt)
					}
					off |= uint64(delta[i]) << (8 * bit)
					i++
				}
			}
			for bit := uint(0); bit < 3; bit++ {
				if op&(0x10<<bit) != 0 {
					if i >= len(delta) {
						return nil, fmt.Errorf("%w: truncated delta copy", ErrCorrupt)
					}
					size |= uint64(delta[i]) << (8 * bit)
					i++
				}
			}
			if size == 0 {
				size = 0x10000
			}
			if off+size < off || off+size > uint64(len(base)) || uint64(len(out))+size > dst {
				return nil, fmt.Errorf("%w: delta copy out of range", ErrCorrupt)
			}
			out = append(out, base[off:off+size]...)
		case op != 0:
			n := int(op)
			if i+n > len(delta) || uint64(len(out)+n) > dst { //nolint:gosec // G115: both are non-negative
				return nil, fmt.Errorf("%w: delta insert out of range", ErrCorrupt)
			}
			out = append(out, delta[i:i+n]...)
			i += n
		default:
			return nil, fmt.Errorf("%w: delta opcode 0 is reserved", ErrCorrupt)
		}
	}
	if uint64(len(out)) != dst {
		return nil, fmt.Errorf("%w: delta produced %d bytes, header says %d", ErrCorrupt, len(out), dst)
	}
	return out, nil
}
