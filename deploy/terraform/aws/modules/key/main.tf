# The deployment's customer-managed key (rotated yearly): databases, secrets, logs, queues
# and images are encrypted with it. CloudWatch Logs and SNS (delivering to encrypted queues)
# may use it.

variable "name" {
  type = string
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_111:In a key policy, Resource "*" means this key and nothing else
  # checkov:skip=CKV_AWS_356:In a key policy, Resource "*" means this key and nothing else
  # checkov:skip=CKV_AWS_109:The account's administrators manage the key, as AWS's default key policy does
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
  statement {
    sid       = "SnsToSqs"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.name}: databases, secrets, logs, queues, images"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

output "arn" {
  value = aws_kms_key.this.arn
}
