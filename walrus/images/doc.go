// Package images is the storage side of machine images: it reads image
// bundles out of Walrus on behalf of an account, and keeps the decrypted
// (plain) images that node controllers download, as Eucalyptus's Walrus did.
//
// # Registration
//
// The cloud controller's RegisterImage reads the manifest through Manifest
// (as the caller: the object's owner, or an ACL that grants READ to the
// caller, to everyone, or to the cloud itself as the canned ACL
// aws-exec-read does), verifies its signature against the caller's
// certificates, then calls Unbundle: the bundle's AES key is decrypted with
// the cloud's private key and the parts are streamed out of Walrus through
// bundle.Unbundle, which checks every part digest, the padding, the archive
// and the image digest, into a temporary file of the cache directory while
// its SHA-256 is computed. Only when every check has passed is the file
// renamed to that digest: a reader never sees half an image, and a crash
// leaves a temporary file that the next start removes.
//
// A bundle whose key does not decrypt is still read to its end with a
// random key before it is refused: the time and the answer of a refusal
// then say nothing about the RSA ciphertext (PKCS#1 v1.5 is a padding
// oracle; this is the countermeasure of TLS's RFC 5246 §7.4.7.1).
//
// # The cache
//
// Plain images live under WALRUS_BUCKETS_PATH/.image-cache (a name no bucket
// can have), one file per image named by its SHA-256, so that two images
// registered from the same bundle share one file. WALRUS_IMAGE_CACHE_MB
// bounds the space: least recently used images go first, never one that is
// being read; 0 keeps none, so every download unbundles again and the file
// goes when its last reader closes it. An image larger than the space is
// refused at registration.
//
// Open serves a node controller: the image named by its id and SHA-256,
// from the cache or, when it was evicted, unbundled again from its bundle
// in Walrus and checked to hash to that SHA-256 still. However many ask at
// once for an image that is not there, it is decrypted once (and however
// many registrations of one bundle run at once, it is decrypted once); the
// work goes on for the others when one asker gives up, and stops when all
// have.
package images
