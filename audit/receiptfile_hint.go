package audit

// Hint says what to do about the error, in the words of `custody verify
// receipt` ("" for a file that could not be read: its error says why).
func (e *ReceiptFileError) Hint() string { return receiptFileFixes[e.Problem] }

// ExitCode is custody's exit code for the error: 3, the input is at
// fault, not the log.
func (e *ReceiptFileError) ExitCode() int { return 3 }

// receiptFileFixes are the fixes of the problems of a ReceiptFileError.
var receiptFileFixes = map[ReceiptFileProblem]string{
	NoEntry:     "pass --entry FILE with the exact entry bytes",
	EntryUnread: "pass the exact entry bytes",
	NotJSON:     "pass receipts as 'custody append' prints them",
	NotReceipt:  "pass receipts as 'custody append' prints them (one JSON object per line) or a .tlog-proof file with --entry; nothing was checked against the log",
	NoReceipt:   "pass a file with at least one receipt",
}
