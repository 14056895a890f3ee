package walrus

import (
	"context"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// objectAttributes is GetObjectAttributes' document (botocore's
// GetObjectAttributesOutput); only the attributes asked for are filled.
type objectAttributes struct {
	XMLName      xml.Name      `xml:"GetObjectAttributesResponse"`
	Xmlns        string        `xml:"xmlns,attr"`
	ETag         string        `xml:"ETag,omitempty"`
	Checksum     *checksumElem `xml:"Checksum,omitempty"`
	ObjectParts  *objectParts  `xml:"ObjectParts,omitempty"`
	StorageClass string        `xml:"StorageClass,omitempty"`
	ObjectSize   *int64        `xml:"ObjectSize,omitempty"`
}

type checksumElem struct {
	CRC32        string `xml:"ChecksumCRC32,omitempty"`
	CRC32C       string `xml:"ChecksumCRC32C,omitempty"`
	CRC64NVME    string `xml:"ChecksumCRC64NVME,omitempty"`
	SHA1         string `xml:"ChecksumSHA1,omitempty"`
	SHA256       string `xml:"ChecksumSHA256,omitempty"`
	ChecksumType string `xml:"ChecksumType,omitempty"`
}

type objectParts struct {
	PartsCount           int              `xml:"PartsCount"`
	PartNumberMarker     int              `xml:"PartNumberMarker"`
	NextPartNumberMarker int              `xml:"NextPartNumberMarker"`
	MaxParts             int              `xml:"MaxParts"`
	IsTruncated          bool             `xml:"IsTruncated"`
	Parts                []objectPartElem `xml:"Part"`
}

type objectPartElem struct {
	PartNumber int   `xml:"PartNumber"`
	Size       int64 `xml:"Size"`
}

// objectAttributeNames are the values x-amz-object-attributes may list.
var objectAttributeNames = map[string]bool{"ETag": true, "Checksum": true, "ObjectParts": true, "StorageClass": true, "ObjectSize": true}

// getObjectAttributes serves GetObjectAttributes: what HeadObject and
// ListParts would tell of an object, for the attributes the
// x-amz-object-attributes header lists. ObjectParts lists the parts of a
// multipart object (number and size, paged by x-amz-max-parts and
// x-amz-part-number-marker), and is absent for an object put whole.
func (w *Walrus) getObjectAttributes(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, v := range r.http.Header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			if !objectAttributeNames[a] {
				return nil, s3Errorf("InvalidArgument", "Invalid attribute name specified.")
			}
			want[a] = true
		}
	}
	if len(want) == 0 {
		return nil, s3Errorf("InvalidRequest", "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty")
	}
	maxParts, marker := 1000, 0
	if v := r.http.Header.Get("X-Amz-Max-Parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, s3Errorf("InvalidArgument", "Provided max-parts not an integer or within integer range")
		}
		maxParts = min(n, 1000)
	}
	if v := r.http.Header.Get("X-Amz-Part-Number-Marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, s3Errorf("InvalidArgument", "Provided part-number-marker not an integer or within integer range")
		}
		marker = n
	}
	_, o, err := w.object(ctx, r, r.bucket, r.key, permRead)
	if err != nil {
		return nil, err
	}
	doc := objectAttributes{Xmlns: s3NS}
	if want["ETag"] {
		doc.ETag = o.ETag // unquoted, as S3 sends it here
	}
	if want["Checksum"] {
		if algo, sum, ok := strings.Cut(o.Checksum, ":"); ok {
			c := &checksumElem{ChecksumType: "FULL_OBJECT"}
			switch algo {
			case "CRC32":
				c.CRC32 = sum
			case "CRC32C":
				c.CRC32C = sum
			case "CRC64NVME":
				c.CRC64NVME = sum
			case "SHA1":
				c.SHA1 = sum
			case "SHA256":
				c.SHA256 = sum
			}
			doc.Checksum = c
		}
	}
	if want["ObjectParts"] && o.Parts > 0 {
		op := &objectParts{PartsCount: o.Parts, PartNumberMarker: marker, MaxParts: maxParts, Parts: []objectPartElem{}}
		for _, p := range o.PartList {
			if p.Number <= marker {
				continue
			}
			if len(op.Parts) == maxParts {
				op.IsTruncated = true
				break
			}
			op.Parts = append(op.Parts, objectPartElem{PartNumber: p.Number, Size: p.Size})
			op.NextPartNumberMarker = p.Number
		}
		doc.ObjectParts = op
	}
	if want["StorageClass"] {
		doc.StorageClass = storageClass(&o)
	}
	if want["ObjectSize"] {
		size := o.Size
		doc.ObjectSize = &size
	}
	resp := xmlResponse(doc)
	resp.header.Set("Last-Modified", msToTime(o.ModifiedMS).Format(http.TimeFormat))
	return resp, nil
}
