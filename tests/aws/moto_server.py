"""moto's S3 and DynamoDB (and IAM) in server mode on 127.0.0.1, checking signatures as AWS does.

moto authenticates and authorizes requests once INITIAL_NO_AUTH_ACTION_COUNT actions have
been served without: this script makes exactly that many setup calls (an IAM user allowed
s3:* and dynamodb:*, its access key, the bucket), so every request after them must be signed with that key.
Prints one JSON line {"port", "access_key_id", "secret_access_key", "bucket"}, then serves
until its stdin closes (the test holding it ends).
"""

import json
import os
import sys

SETUP_ACTIONS = 4
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
# Setup calls are not authenticated; boto3 still wants some keys to sign them with.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "setup")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "setup")

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
port = server._server.port
endpoint = f"http://127.0.0.1:{port}"

iam = boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint)
iam.create_user(UserName="gateway")
iam.put_user_policy(
    UserName="gateway",
    PolicyName="s3",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"}
            ],
        }
    ),
)
key = iam.create_access_key(UserName="gateway")["AccessKey"]
s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
s3.create_bucket(Bucket="wicket-objects")

print(
    json.dumps(
        {
            "port": port,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "bucket": "wicket-objects",
        }
    ),
    flush=True,
)
sys.stdin.read()
server.stop()
