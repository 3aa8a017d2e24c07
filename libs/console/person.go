package console

import (
	"context"
	"net/http"

	"github.com/cefiot/cefiot/libs/access"
)

// personKey holds the person a console request is made by: the component
// of their verified identity (operator/alice).
type personKey struct{}

func withPerson(ctx context.Context, component string) context.Context {
	return context.WithValue(ctx, personKey{}, component)
}

// actFor names, in h, the person the console acts for (access.OnBehalfOf),
// so the service authorizes and audits that person; a header of that name
// that came from the browser is never passed on.
func actFor(ctx context.Context, h http.Header) {
	h.Del(access.OnBehalfOf)
	if p, ok := ctx.Value(personKey{}).(string); ok && p != "" {
		h.Set(access.OnBehalfOf, p)
	}
}
