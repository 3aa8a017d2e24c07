package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/cefiot/cefiot/libs/access"
)

// personKey holds the person a console request is made by.
type personKey struct{}

// person is the component of their verified identity (operator/alice) and
// the cameras they are limited to (nil: all).
type person struct {
	component string
	cameras   []string
}

func withPerson(ctx context.Context, p person) context.Context {
	return context.WithValue(ctx, personKey{}, p)
}

func personOf(ctx context.Context) (person, bool) {
	p, ok := ctx.Value(personKey{}).(person)
	return p, ok && p.component != ""
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
	h.Del(access.OnBehalfOfCameras)
	if p, ok := personOf(ctx); ok {
		h.Set(access.OnBehalfOf, p.component)
		if p.cameras != nil {
			h.Set(access.OnBehalfOfCameras, strings.Join(p.cameras, ","))
		}
	}
}
