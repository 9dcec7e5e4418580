"""s3_helpers.py -- what the object-store scenarios share
(test_gpu_s3.py, test_gpu_s3_multipart.py): a stub registered with the
test, a supervisor with a fake GPU and a checkpoint.object_store section,
and looks at what the stub holds."""
import os

from harness import check
from gpu_helpers import FakeGPU, GpuSup
from s3stub import S3Stub

MANIFEST = "llmux-manifest"
IMAGE_FILES = ["fake-image.txt", "inventory.img", "pages-1.img"]


def stub_for(env, **kw):
    stub = S3Stub(**kw)
    env.procs.append(stub)
    return stub


def s3_sup(env, stub, keep=True, store_extra="", secret_key=None, bucket=None,
           models=None, fake=None, name="supervisord", start=True):
    fake = fake or FakeGPU(env)
    extra = ("  keep_images: false\n" if not keep else "") + \
        stub.config(secret_key=secret_key, bucket=bucket, extra=store_extra)
    models = models or {"a": {"args": fake.args(1000), "eviction": "offload+checkpoint"}}
    sup = GpuSup(env, fake, models, extra)
    if start:
        sup.start(name=name)
    return fake, sup


def images(sup, name="a"):
    return os.path.join(sup.images, name, "images")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def latest_id(stub, model="a"):
    text = stub.objects["%s/latest" % model].decode()
    check(text.endswith("\n"), text)
    return text[:-1]


def uploaded(stub, model="a"):
    """{file: bytes} of the checkpoint MODEL/latest names."""
    prefix = "%s/%s/" % (model, latest_id(stub, model))
    return {k[len(prefix):]: stub.objects[k] for k in stub.keys_under(prefix)}


def no_refusals(stub):
    """Every request llmux made was signed as S3 wants it."""
    bad = [e for e in stub.requests() if e[3] in ("SignatureDoesNotMatch",
                                                  "AccessDenied",
                                                  "XAmzContentSHA256Mismatch",
                                                  "AuthorizationHeaderMalformed",
                                                  "InvalidRequest")]
    check(not bad, "refused requests: %r" % bad)
