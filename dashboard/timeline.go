package dashboard

import (
	"context"
	"net/http"
)

// serveTimeline serves /timeline. (Being built: issue 15.)
func (d *Dashboard) serveTimeline(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, "error.html", func(ctx context.Context) (any, int, error) {
		return d.errorPage("Not built yet", "This page is being built."), http.StatusNotFound, nil
	})
}
