package addr

// Params is the part of a main.cf model (*postconf.Config) that rewriting
// and resolving read: expanded values, lists and yes/no settings.
type Params interface {
	Get(name string) string
	List(name string) []string
	Bool(name string) bool
}
