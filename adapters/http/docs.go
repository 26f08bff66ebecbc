package httpadapter

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/relaystation/relay/api"
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
	assets := http.StripPrefix("/docs/", http.FileServer(http.FS(swaggerAssets())))
	e.GET("/docs/*", echo.WrapHandler(assets))
}

func swaggerAssets() fs.FS { return swaggerfiles.FS }
