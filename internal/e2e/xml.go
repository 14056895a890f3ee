package e2e

import (
	"encoding/xml"
	"net/http"
)

func decodeXML(resp *http.Response, v any) error {
	return xml.NewDecoder(resp.Body).Decode(v)
}
