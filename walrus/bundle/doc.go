// Package bundle makes and reads image bundles in the format of
// ec2-bundle-image and euca2ools 3.x (euca-bundle-image, euca-unbundle), so
// that a bundle made by those tools registers here and a bundle made here
// unbundles there. It is a pure library: files and readers in, files and
// writers out; no HTTP and no store.
//
// # The format, as euca2ools 3.4 writes it
//
// Creating a bundle is one stream (Create):
//
//		image file -> tar -> SHA-1 (the image digest) -> gzip -> AES-128-CBC -> parts
//
//	  - tar: one regular-file entry named after the bundle prefix, mode 0644,
//	    owner 0/0, mtime 0, GNU format (Python 2's tarfile default), the two
//	    zero end blocks, then zeros up to a multiple of the 10240-byte record.
//	  - The manifest's <image><digest algorithm="SHA1"> is the hex SHA-1 of
//	    that whole tar stream, padding included: the uncompressed, unencrypted
//	    tar, not the image file.
//	  - gzip, then AES-128-CBC with a random 16-byte key and IV and PKCS#7
//	    padding (what `openssl enc -aes-128-cbc -K hex -iv hex` does: no
//	    "Salted__" header).
//	  - The ciphertext is cut into parts of 10 MiB (PartSize), named
//	    PREFIX.part.00, PREFIX.part.01, … (two digits at least). Each part's
//	    hex SHA-1 is in the manifest; <bundled_size> is the sum of the part
//	    sizes and <size> the size of the image file.
//	  - The AES key and IV are each written as 32 lower-case hex characters,
//	    and that ASCII text (not the 16 raw bytes) is encrypted with RSA
//	    PKCS#1 v1.5 to the cloud's certificate (ec2_encrypted_key,
//	    ec2_encrypted_iv) and to the user's (user_encrypted_key,
//	    user_encrypted_iv); the manifest holds the ciphertexts in hex.
//	  - The manifest is the declaration <?xml version='1.0' encoding='ASCII'?>
//	    on a line of its own (lxml's tostring with xml_declaration=True),
//	    then one line of XML in the order euca2ools' lxml.objectify code
//	    produces: <manifest><version>2007-10-10</version><bundler>…</bundler>
//	    <machine_configuration>…</machine_configuration><image>…</image>
//	    <signature>…</signature></manifest>; in <image>, <type> comes right
//	    after <user>. Characters beyond ASCII are character references.
//	  - <signature> is the hex RSA PKCS#1 v1.5 SHA-1 signature, by the user's
//	    private key, of the bytes of the <machine_configuration> element
//	    followed by those of the <image> element, exactly as they stand in the
//	    manifest (Eucalyptus cuts both out of the manifest text and verifies
//	    against each of the owner's certificates).
//	  - Kernel and ramdisk images carry <kernel_id>true</kernel_id> or
//	    <ramdisk_id>true</ramdisk_id> in <machine_configuration> (Eucalyptus
//	    decides the image type from those) besides <image><type>.
//
// # Reading a bundle
//
// ParseManifest reads untrusted bytes: it finds the two signed elements by
// their byte offsets in the document and decodes the fields from those same
// bytes, so what is verified is what is used. VerifySignature checks the
// signature against any of the owner's certificates, DecryptKey recovers the
// AES key with the cloud's private key, and Unbundle streams the parts back
// through AES, gunzip and untar into a writer, checking every part digest,
// the padding, the archive, the image digest and the sizes. Each check that
// fails has its own error (ErrSignature, ErrKeyDecrypt, ErrPartMissing,
// ErrPartDigest, ErrPadding, ErrCompression, ErrArchive, ErrImageDigest,
// ErrSize), so that RegisterImage can say which one it was.
package bundle
