package eventstream

import (
	"encoding/binary"
	"hash/crc32"
)

// appendPrelude appends a prelude with a valid CRC.
func appendPrelude(b []byte, total, hlen uint32) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, total)
	b = binary.BigEndian.AppendUint32(b, hlen)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// appendCRC appends the message CRC of b.
func appendCRC(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}
