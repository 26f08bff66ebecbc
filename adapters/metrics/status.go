package metrics

// RouteClass says which surface served a request. It is a closed set so the
// route_class label stays bounded; raw paths are never labels.
type RouteClass uint8

const (
	RouteProxy RouteClass = iota // /v1/* forwarded upstream
	RouteAdmin                   // /admin/* management API
	RouteAPI                     // the relay's own endpoints: /health, /ready, /metrics, ...
	numRouteClasses
)

var routeClassNames = [numRouteClasses]string{
	RouteProxy: "proxy",
	RouteAdmin: "admin",
	RouteAPI:   "api",
}

func (r RouteClass) String() string {
	if r < numRouteClasses {
		return routeClassNames[r]
	}
	return "api"
}

// Status classes, as label values. Statuses outside 100-599 (0 when a client
// went away before any status was written) are "other".
const (
	class1xx   = "1xx"
	class2xx   = "2xx"
	class3xx   = "3xx"
	class4xx   = "4xx"
	class5xx   = "5xx"
	classOther = "other"
)

const numStatusClasses = 6

var statusClassNames = [numStatusClasses]string{classOther, class1xx, class2xx, class3xx, class4xx, class5xx}

// statusClassIndex maps a status to its index in statusClassNames.
func statusClassIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// StatusClass returns "1xx".."5xx" for an HTTP status, "other" outside
// 100-599. It returns constants and never allocates.
func StatusClass(status int) string {
	return statusClassNames[statusClassIndex(status)]
}
