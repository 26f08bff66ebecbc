package httpadapter

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/relaystation/relay/adapters/http/ui"
)

// mountUI serves the operator dashboard at /ui/ and sends / there. The
// admin IP allow-list covers the dashboard's pages, except the key holder's
// page and the static assets it needs (ui.IsPublic); the API each page
// calls is guarded on its own. Registered after the management routes and
// before the proxy's catch-all, so no other method of / or /ui changes
// meaning: only GET and HEAD of / redirect.
func (s *Server) mountUI(e *echo.Echo) error {
	h, err := ui.New()
	if err != nil {
		return err
	}
	serve := echo.WrapHandler(h)
	guard := func(next echo.HandlerFunc) echo.HandlerFunc {
		guarded := s.adminIPMiddleware(next)
		return func(c echo.Context) error {
			if ui.IsPublic(c.Request().URL.Path) {
				return next(c)
			}
			// A refusal is still a dashboard answer: same strict headers.
			ui.SetSecurityHeaders(c.Response().Header())
			return guarded(c)
		}
	}
	toUI := func(c echo.Context) error { return c.Redirect(http.StatusFound, ui.Prefix) }
	e.GET("/", toUI)
	e.HEAD("/", toUI)
	e.Any("/ui", serve, guard)
	e.Any("/ui/*", serve, guard)
	return nil
}
