package httpadapter

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
)

// Swagger UI's assets are embedded (swaggo/files), so /docs works offline.
const docsIndex = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Relay Station API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
</script>
</body>
</html>
`

func (s *Server) registerDocs(e *echo.Echo) {
	e.GET("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", api.SpecYAML())
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		b, err := api.SpecJSON()
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	})
	index := func(c echo.Context) error { return c.HTML(http.StatusOK, docsIndex) }
	e.GET("/docs", index)
	e.GET("/docs/", index)
	e.GET("/docs/index.html", index)
	assetFS := swaggerAssets()
	assets := http.StripPrefix("/docs/", http.FileServer(http.FS(assetFS)))
	e.GET("/docs/*", func(c echo.Context) error {
		// Only files that exist are served; anything else gets the same
		// Anthropic-shaped 404 as every other route (http.FileServer's own
		// answers are plain text and list directories).
		name := c.Param("*")
		if st, err := fs.Stat(assetFS, name); name == "" || err != nil || st.IsDir() {
			return &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonPath, Message: "not found: no such documentation file"}
		}
		assets.ServeHTTP(c.Response(), c.Request())
		return nil
	})
}

func swaggerAssets() fs.FS { return swaggerfiles.FS }
