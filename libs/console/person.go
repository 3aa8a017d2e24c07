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

// browserHeaders are what a browser sends that is about the browser and
// the console's own origin: the console checked them (its guard and
// gate) and never passes them on. The session cookie above all stays with
// the console; and the console's origin is not the service's.
var browserHeaders = []string{"Cookie", "Authorization", "Origin", "Referer",
	"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User"}

// actFor names, in h, the person the console acts for (access.OnBehalfOf),
// so the service authorizes and audits that person; a header of that name
// that came from the browser is never passed on, nor are browserHeaders.
func actFor(ctx context.Context, h http.Header) {
	for _, k := range browserHeaders {
		h.Del(k)
	}
	h.Del(access.OnBehalfOf)
	if p, ok := ctx.Value(personKey{}).(string); ok && p != "" {
		h.Set(access.OnBehalfOf, p)
	}
}
