package localstack

// AdminURLs maps every service process of the stack ("scheduler-edge",
// "capture", "capture@node-1", "enrich-cloud", "sink", ...) to its admin
// REST base URL, e.g. for the console.
func (s *Stack) AdminURLs() map[string]string {
	out := map[string]string{}
	for _, name := range s.ServiceNames() {
		out[name] = s.HTTP(name)
	}
	return out
}
