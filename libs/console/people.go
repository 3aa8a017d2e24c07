package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/cefiot/cefiot/libs/console/users"
	"github.com/cefiot/cefiot/libs/pki"
)

// people serves /api/users, the administrators' management of console
// users (the gate lets only administrators in):
//
//	GET    /api/users         the users, without their password hashes
//	POST   /api/users         {"name","role","cameras","password"}: adds or
//	                          changes one; a new user without a password
//	                          gets a generated one, answered once
//	DELETE /api/users/{name}  removes one (their sessions end at once)
type people struct {
	store  *users.Store
	logger *slog.Logger
}

// userView is a user as the API shows them.
type userView struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Cameras []string `json:"cameras,omitempty"`
	// Password says whether the user may log in with a password (else
	// only through the trusted proxy).
	Password bool `json:"password"`
}

func (p *people) serve(w http.ResponseWriter, r *http.Request, who pki.Identity) {
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/users"), "/")
	note := noteOf(r.Context())
	switch {
	case r.Method == http.MethodGet && name == "":
		f, err := p.store.Load()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "users: "+err.Error())
			return
		}
		out := make([]userView, 0, len(f.Users))
		for _, u := range f.Users {
			out = append(out, userView{Name: u.Name, Role: u.Role, Cameras: u.Cameras, Password: u.Hash != ""})
		}
		writeJSON(w, map[string]any{"users": out})
	case r.Method == http.MethodPost && name == "":
		var in struct {
			Name, Role, Password string
			Cameras              []string
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, `users: want JSON {"name": ..., "role": viewer|operator|admin, "cameras": [...], "password": ...}`)
			return
		}
		note.target = fmt.Sprintf("user=%s role=%s", in.Name, in.Role)
		if len(in.Cameras) > 0 {
			note.target += " cameras=" + strings.Join(in.Cameras, ",")
		}
		u := users.User{Name: in.Name, Role: in.Role, Cameras: in.Cameras}
		generated, err := p.store.Put(u, in.Password)
		if err != nil {
			writeError(w, statusOf(err), "users: "+err.Error())
			return
		}
		p.logger.Info("console user saved", "user", in.Name, "role", in.Role, "cameras", in.Cameras, "by", who.String())
		out := map[string]any{"user": userView{Name: u.Name, Role: u.Role, Cameras: u.Cameras, Password: true}}
		if generated != "" {
			out["password"] = generated
		}
		writeJSON(w, out)
	case r.Method == http.MethodDelete && name != "":
		note.target = "user=" + name
		ok, err := p.store.Delete(name)
		switch {
		case err != nil:
			writeError(w, statusOf(err), "users: "+err.Error())
		case !ok:
			writeError(w, http.StatusNotFound, "users: no user "+name)
		default:
			p.logger.Info("console user removed", "user", name, "by", who.String())
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		writeError(w, http.StatusMethodNotAllowed, "users: GET, POST or DELETE /api/users/{name}")
	}
}

// statusOf is the HTTP status of a users store error: the caller's
// mistake (a bad field, the last administrator) or the console's.
func statusOf(err error) int {
	switch {
	case errors.Is(err, users.ErrLastAdmin):
		return http.StatusConflict
	case errors.Is(err, users.ErrInvalid):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}
