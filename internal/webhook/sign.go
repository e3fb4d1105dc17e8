package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries a delivery's signature: "t=UNIX,v1=HEX", where
// HEX is HMAC-SHA256(secret, UNIX + "." + body). A receiver checks it
// with Verify (or the snippet in docs/api.md).
const SignatureHeader = "Parley-Signature"

// Other headers of a delivery.
const (
	EventIDHeader   = "Parley-Event-Id"
	EventTypeHeader = "Parley-Event-Type"
	DeliveryHeader  = "Parley-Delivery-Id"
)

// maxSignatureHeader bounds what ParseSignature reads.
const maxSignatureHeader = 1024

// Sign returns the signature header value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature is a parsed signature header.
type Signature struct {
	Timestamp int64
	// V1 are the v1 signatures (several while a secret is being
	// rotated), decoded.
	V1 [][]byte
}

// ParseSignature parses "t=UNIX,v1=HEX[,v1=HEX...]". Unknown keys are
// ignored, so newer schemes can be added beside v1.
func ParseSignature(h string) (Signature, error) {
	var s Signature
	if len(h) > maxSignatureHeader {
		return s, errors.New("webhook: signature header too long")
	}
	haveT := false
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Signature{}, fmt.Errorf("webhook: signature header: %q is not key=value", part)
		}
		switch k {
		case "t":
			if haveT {
				return Signature{}, errors.New("webhook: signature header: t given twice")
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return Signature{}, fmt.Errorf("webhook: signature header: bad timestamp %q", v)
			}
			s.Timestamp, haveT = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return Signature{}, errors.New("webhook: signature header: v1 is not a hex SHA-256 MAC")
			}
			s.V1 = append(s.V1, b)
		}
	}
	if !haveT || len(s.V1) == 0 {
		return Signature{}, errors.New("webhook: signature header: needs t= and v1=")
	}
	return s, nil
}

// Verify checks a delivery's signature header against body and secret,
// and that it was made within tolerance of now (replay protection).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	s, err := ParseSignature(header)
	if err != nil {
		return err
	}
	age := now.Sub(time.Unix(s.Timestamp, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("webhook: signature made %v from now, outside %v", age.Round(time.Second), tolerance)
	}
	want := mac(secret, strconv.FormatInt(s.Timestamp, 10), body)
	for _, got := range s.V1 {
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("webhook: signature does not match")
}
