package audit

import (
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// notEvent is what a receipt whose entry does not decode fails with.
const notEvent = "the entry is not a valid canonical event"

// CheckReceipt is verify.CheckReceipt followed by decoding the proved entry
// as a canonical custody event (record.DecodeEntry). It returns the
// checkpoint and the event. An entry that is not a canonical event fails
// the receipt with a bad-receipt *verify.VerificationError; the other
// errors are verify.CheckReceipt's (ErrMalformedReceipt included).
func CheckReceipt(r verify.Receipt, origin string, verifiers note.Verifiers, trust *verify.TrustPolicy) (verify.Checkpoint, record.Event, error) {
	cp, entry, err := verify.CheckReceipt(r, origin, verifiers, trust)
	if err != nil {
		return cp, record.Event{}, err
	}
	ev, err := record.DecodeEntry(entry)
	if err != nil {
		return cp, ev, verify.ReceiptError(r, origin, notEvent, err)
	}
	return cp, ev, nil
}

// CheckTLogProof is verify.CheckTLogProof followed by decoding entry as a
// canonical custody event, like CheckReceipt: it returns the checkpoint,
// the proof's index and the event.
func CheckTLogProof(text, entry []byte, origin string, verifiers note.Verifiers, trust *verify.TrustPolicy) (verify.Checkpoint, uint64, record.Event, error) {
	cp, index, err := verify.CheckTLogProof(text, entry, origin, verifiers, trust)
	if err != nil {
		return cp, index, record.Event{}, err
	}
	ev, err := record.DecodeEntry(entry)
	if err != nil {
		tpf, _ := verify.ParseTLogProof(text)
		r := verify.Receipt{Index: index, Checkpoint: string(tpf.Checkpoint)}
		return cp, index, ev, verify.ReceiptError(r, origin, notEvent, err)
	}
	return cp, index, ev, nil
}
