package queue

import "os"

// ReadFile reads the envelope of the queue file f, named path in errors,
// wherever it lies (postcat reads files by name and from stdin). A file
// that does not parse gives a *CorruptError; one whose first line is not
// a queue file's gives a *CorruptError with Line 1.
func ReadFile(f *os.File, path string) (*Message, error) {
	return readEnvelope(f, path)
}
