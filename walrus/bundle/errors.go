package bundle

import "errors"

// Each check a bundle can fail has its own error. Returned errors wrap one of
// these with the detail (which part, which digest), so callers test them
// with errors.Is and show Error() to the user as it is.
var (
	// ErrManifest: the manifest is not a well-formed bundle manifest.
	ErrManifest = errors.New("malformed bundle manifest")
	// ErrSignature: the manifest's signature is missing or verifies with
	// none of the certificates given.
	ErrSignature = errors.New("manifest signature does not verify")
	// ErrKeyDecrypt: the bundle's AES key or IV cannot be decrypted with
	// the private key given (the bundle was made for another cloud or user).
	ErrKeyDecrypt = errors.New("cannot decrypt the bundle key")
	// ErrPartMissing: a part named by the manifest does not exist.
	ErrPartMissing = errors.New("bundle part missing")
	// ErrPartDigest: a part's SHA-1 differs from the manifest's (a changed,
	// truncated or extended part).
	ErrPartDigest = errors.New("bundle part digest mismatch")
	// ErrPadding: the decrypted stream does not end in valid PKCS#7 padding,
	// or the ciphertext is not a whole number of AES blocks.
	ErrPadding = errors.New("bad padding in decrypted bundle")
	// ErrCompression: the decrypted stream is not valid gzip (usually a
	// wrong key: the parts decrypt to noise).
	ErrCompression = errors.New("decrypted bundle is not valid gzip")
	// ErrArchive: the decompressed stream is not a tar of exactly one
	// regular file.
	ErrArchive = errors.New("bundle archive invalid")
	// ErrImageDigest: the SHA-1 of the tar stream differs from the
	// manifest's image digest.
	ErrImageDigest = errors.New("image digest mismatch")
	// ErrSize: the image or the bundle is not the size the manifest says.
	ErrSize = errors.New("bundle size mismatch")
)
