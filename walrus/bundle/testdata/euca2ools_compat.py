#!/usr/bin/python3
"""Bundle and unbundle the way euca2ools 3.x and Eucalyptus do, with the same
building blocks they use, for bundle_test.go to check our format against.

euca2ools 3.4 is Python 2 and no longer packaged; this script redoes its
steps with the same tools: lxml.objectify for the manifest (deannotated,
namespaces cleaned, compact, with lxml's XML declaration), Python's tarfile in GNU format, `gzip -c`,
`openssl enc -aes-128-cbc -K -iv`, `openssl rsautl -pkcs` on the hex key
text, `openssl pkeyutl -pkeyopt digest:sha1` over the SHA-1 of the
machine_configuration and image elements. Verification cuts those two
elements out of the manifest text with the regular expressions Eucalyptus'
ImageManifests.java uses.

Commands:
  manifest FIELDS.json PRIVKEY           print the manifest for the fields
  bundle IMAGE DIR PREFIX FIELDS.json     bundle (FIELDS: arch, user, type,
                                          kernel_id, ramdisk_id, part_size,
                                          cert, privkey, ec2cert, bdm, codes)
  unbundle MANIFEST SRCDIR PRIVKEY OUT [ec2]  euca-unbundle; prints the digest
  verify MANIFEST CERT                    Eucalyptus' signature check
"""

import binascii
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import threading

import lxml.etree
import lxml.objectify


def build_manifest(f, privkey):
    """The manifest euca2ools' BundleManifest.dump_to_str writes."""
    xml = lxml.objectify.Element('manifest')
    xml.version = '2007-10-10'
    xml.bundler = None
    xml.bundler.name = f['bundler_name']
    xml.bundler.version = f['bundler_version']
    xml.bundler.release = f.get('bundler_release', 0)
    xml.machine_configuration = None
    mc = xml.machine_configuration
    mc.architecture = f['arch']
    if f.get('kernel_id'):
        mc.kernel_id = f['kernel_id']
    if f.get('ramdisk_id'):
        mc.ramdisk_id = f['ramdisk_id']
    if f['type'] == 'machine':
        if f.get('bdm'):
            mc.block_device_mapping = None
            for virtual, device in sorted(f['bdm'].items()):
                m = lxml.objectify.Element('mapping')
                m.device = device
                m.virtual = virtual
                mc.block_device_mapping.append(m)
        if f.get('codes'):
            mc.product_codes = None
            for code in f['codes']:
                e = lxml.objectify.Element('product_code')
                mc.product_codes.append(e)
                mc.product_codes.product_code[-1] = code
    xml.image = None
    img = xml.image
    img.name = f['name']
    img.user = f['user']
    # euca2ools 3.4: the type right after the user, for EC2.
    img.type = f['type']
    img.digest = f['digest']
    img.digest.set('algorithm', 'SHA1')
    img.size = f['size']
    img.bundled_size = f['bundled_size']
    img.ec2_encrypted_key = f['ec2_encrypted_key']
    img.ec2_encrypted_key.set('algorithm', 'AES-128-CBC')
    img.user_encrypted_key = f['user_encrypted_key']
    img.user_encrypted_key.set('algorithm', 'AES-128-CBC')
    img.ec2_encrypted_iv = f['ec2_encrypted_iv']
    img.user_encrypted_iv = f['user_encrypted_iv']
    img.parts = None
    img.parts.set('count', str(len(f['parts'])))
    for index, (filename, digest) in enumerate(f['parts']):
        p = lxml.objectify.Element('part')
        p.set('index', str(index))
        p.filename = filename
        p.digest = digest
        p.digest.set('algorithm', 'SHA1')
        img.parts.append(p)
    lxml.objectify.deannotate(xml, xsi_nil=True)
    lxml.etree.cleanup_namespaces(xml)
    to_sign = (lxml.etree.tostring(xml.machine_configuration) +
               lxml.etree.tostring(xml.image))
    xml.signature = sign(to_sign, privkey)
    lxml.objectify.deannotate(xml, xsi_nil=True)
    lxml.etree.cleanup_namespaces(xml)
    # What euca2ools writes: lxml's declaration (no encoding given, so
    # <?xml version='1.0' encoding='ASCII'?> and a newline), then the
    # document on one line.
    return lxml.etree.tostring(xml, xml_declaration=True).strip()


def sign(data, privkey):
    out = subprocess.run(['openssl', 'pkeyutl', '-sign', '-inkey', privkey,
                          '-pkeyopt', 'digest:sha1'],
                         input=hashlib.sha1(data).digest(),
                         stdout=subprocess.PIPE, check=True).stdout
    return binascii.hexlify(out).decode()


def rsa_encrypt(text, cert):
    out = subprocess.run(['openssl', 'rsautl', '-encrypt', '-pkcs', '-inkey',
                          cert, '-certin'], input=text.encode(),
                         stdout=subprocess.PIPE, check=True).stdout
    return binascii.hexlify(out).decode()


def rsa_decrypt_hex(hexct, privkey):
    out = subprocess.run(['openssl', 'rsautl', '-decrypt', '-pkcs', '-inkey',
                          privkey], input=binascii.unhexlify(hexct),
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    int(out, 16)  # euca2ools' check that it looks like a key
    return out


class Hashing(io.RawIOBase):
    def __init__(self, out):
        self.out, self.sha = out, hashlib.sha1()

    def writable(self):
        return True

    def write(self, b):
        self.sha.update(b)
        self.out.write(b)
        return len(b)


def bundle(image, dest, prefix, f):
    rand = random.SystemRandom()
    key = '{0:0>32x}'.format(rand.getrandbits(128))
    iv = '{0:0>32x}'.format(rand.getrandbits(128))
    gz = subprocess.Popen(['gzip', '-c'], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE)
    enc = subprocess.Popen(['openssl', 'enc', '-e', '-aes-128-cbc', '-K', key,
                            '-iv', iv], stdin=gz.stdout,
                           stdout=subprocess.PIPE)
    gz.stdout.close()
    size = os.path.getsize(image)
    sink = Hashing(gz.stdin)

    def feed():
        tar = tarfile.open(mode='w|', fileobj=sink, format=tarfile.GNU_FORMAT)
        info = tarfile.TarInfo(prefix)
        info.size = size
        with open(image, 'rb') as img:
            tar.addfile(info, fileobj=img)
        tar.close()
        gz.stdin.close()

    t = threading.Thread(target=feed)
    t.start()
    # The part writer of euca2ools' bundle pipes: it stops after the first
    # short part, so an exact multiple ends with an empty part.
    parts, total, n = [], 0, 0
    part_size = f.get('part_size', 10485760)
    while True:
        name = '{0}.part.{1:02}'.format(prefix, n)
        sha, written = hashlib.sha1(), 0
        with open(os.path.join(dest, name), 'wb') as part:
            while written < part_size:
                chunk = enc.stdout.read(min(part_size - written, 65536))
                if not chunk:
                    break
                part.write(chunk)
                sha.update(chunk)
                written += len(chunk)
        parts.append((name, sha.hexdigest()))
        total += written
        n += 1
        if written < part_size:
            break
    t.join()
    enc.wait()
    gz.wait()
    fields = dict(f)
    fields.update(
        bundler_name='euca2ools', bundler_version='3.4.1', name=prefix,
        digest=sink.sha.hexdigest(), size=size, bundled_size=total,
        ec2_encrypted_key=rsa_encrypt(key, f['ec2cert']),
        user_encrypted_key=rsa_encrypt(key, f['cert']),
        ec2_encrypted_iv=rsa_encrypt(iv, f['ec2cert']),
        user_encrypted_iv=rsa_encrypt(iv, f['cert']), parts=parts)
    path = os.path.join(dest, prefix + '.manifest.xml')
    with open(path, 'wb') as out:
        out.write(build_manifest(fields, f['privkey']))
    print(path)


def unbundle(manifest_path, src, privkey, out_path, which='user'):
    """What euca-unbundle does: read the manifest with lxml.objectify,
    decrypt the key, check each part's SHA-1 while concatenating, then
    openssl -> gzip -d -> tar, hashing the tar stream."""
    with open(manifest_path, 'rb') as fh:
        xml = lxml.objectify.parse(fh).getroot()
    img = xml.image
    key = rsa_decrypt_hex(getattr(img, which + '_encrypted_key').text.strip(), privkey)
    iv = rsa_decrypt_hex(getattr(img, which + '_encrypted_iv').text.strip(), privkey)
    count = int(img.parts.get('count'))
    parts = [None] * count
    for p in img.parts.iter(tag='part'):
        parts[int(p.get('index'))] = (p.filename.text.strip(), p.digest.text.strip())
    with tempfile.TemporaryFile() as cat:
        for name, digest in parts:
            with open(os.path.join(src, name), 'rb') as fh:
                data = fh.read()
            if hashlib.sha1(data).hexdigest() != digest:
                sys.exit('part %s is corrupt' % name)
            cat.write(data)
        cat.seek(0)
        dec = subprocess.Popen(['openssl', 'enc', '-d', '-aes-128-cbc', '-K',
                                key, '-iv', iv], stdin=cat,
                               stdout=subprocess.PIPE)
        gz = subprocess.Popen(['gzip', '-c', '-d'], stdin=dec.stdout,
                              stdout=subprocess.PIPE)
        dec.stdout.close()
        tar_bytes = gz.stdout.read()
        if gz.wait() != 0 or dec.wait() != 0:
            sys.exit('openssl or gzip failed')
    digest = hashlib.sha1(tar_bytes).hexdigest()
    if digest != img.digest.text.strip():
        sys.exit('image digest mismatch')
    tar = tarfile.open(mode='r|', fileobj=io.BytesIO(tar_bytes))
    member = tar.next()
    with open(out_path, 'wb') as out:
        out.write(tar.extractfile(member).read())
    print(digest)


def verify(manifest_path, cert):
    """ImageManifests.checkManifest: cut the elements out of the text with
    Java's replaceAll(".*<image>", "<image>") and friends (. stops at line
    ends, as in Java), then SHA1withRSA."""
    with open(manifest_path, 'rb') as fh:
        text = fh.read().decode()
    # The cut runs on the document's line: the declaration euca2ools
    # writes stands on a line of its own, which Java's . does not cross.
    text = re.sub(r"\A<\?xml[^>]*\?>\n", '', text)
    image = re.sub(r'</image>.*', '</image>', re.sub(r'.*<image>', '<image>', text))
    mc = re.sub(r'</machine_configuration>.*', '</machine_configuration>',
                re.sub(r'.*<machine_configuration>', '<machine_configuration>', text))
    sig = lxml.etree.fromstring(text.encode()).findtext('signature').strip()
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'sig'), 'wb') as fh:
            fh.write(binascii.unhexlify(sig))
        with open(os.path.join(d, 'pad'), 'wb') as fh:
            fh.write((mc + image).encode())
        pub = subprocess.run(['openssl', 'x509', '-in', cert, '-pubkey',
                              '-noout'], stdout=subprocess.PIPE,
                             check=True).stdout
        with open(os.path.join(d, 'pub'), 'wb') as fh:
            fh.write(pub)
        r = subprocess.run(['openssl', 'dgst', '-sha1', '-verify',
                            os.path.join(d, 'pub'), '-signature',
                            os.path.join(d, 'sig'), os.path.join(d, 'pad')],
                           stdout=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit('signature does not verify')
    print('verified')


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'manifest':
        with open(args[0]) as fh:
            fields = json.load(fh)
        sys.stdout.buffer.write(build_manifest(fields, args[1]))
    elif cmd == 'bundle':
        with open(args[3]) as fh:
            fields = json.load(fh)
        bundle(args[0], args[1], args[2], fields)
    elif cmd == 'unbundle':
        unbundle(args[0], args[1], args[2], args[3],
                 'ec2' if len(args) > 4 and args[4] == 'ec2' else 'user')
    elif cmd == 'verify':
        verify(args[0], args[1])
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main()
