# An Emporium shop on AWS: ECS Fargate behind an application load balancer, RDS PostgreSQL
# (a database and role per context), SNS + SQS (EMPORIUM_BUS=sqs), ElastiCache Redis,
# Secrets Manager, CloudWatch logs and an ECR repository, in a VPC of its own.
#
#   topology = "split":    a service per context and the gateway; the load balancer routes
#                          /api/v1/<context>/* to the context, everything else to the gateway
#   topology = "monolith": one service running every context
#
# terraform init && terraform apply -var certificate_arn=… -var smtp_url=… -var image_tag=…
# then run the database initialisation task once (modules/data) before the services start.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-central-1"
}

variable "name" {
  type    = string
  default = "emporium"
}

variable "availability_zones" {
  type    = list(string)
  default = ["eu-central-1a", "eu-central-1b"]
}

variable "topology" {
  type    = string
  default = "split"
  validation {
    condition     = contains(["split", "monolith"], var.topology)
    error_message = "topology is split or monolith."
  }
}

variable "image_tag" {
  type        = string
  description = "The image to run, as pushed to the repository (tags are immutable)."
}

variable "certificate_arn" {
  type = string
}

variable "public_url" {
  type        = string
  description = "The shop's address, for links in messages, e.g. https://shop.example.com"
}

variable "mail_from" {
  type    = string
  default = "Shop <shop@example.com>"
}

variable "smtp_url" {
  type      = string
  sensitive = true
}

variable "admin_email" {
  type    = string
  default = "admin@example.com"
}

locals {
  contexts      = ["identity", "catalog", "ordering", "shipping", "notifications"]
  sqs_namespace = var.name
  image         = "${module.registry.repository_url}:${var.image_tag}"
  discovery     = module.cluster.namespace_name
  common_env = {
    EMPORIUM_LISTEN                = "0.0.0.0:8080"
    EMPORIUM_OPS_LISTEN            = "0.0.0.0:9090"
    EMPORIUM_LOG_FORMAT            = "json"
    EMPORIUM_DATA_DIR              = "/var/lib/emporium/data"
    EMPORIUM_SHUTDOWN_TIMEOUT_SECS = "20"
    EMPORIUM_TRUSTED_PROXIES       = module.network.cidr
    EMPORIUM_PUBLIC_URL            = var.public_url
    EMPORIUM_MAIL_FROM             = var.mail_from
  }
  bus_env = {
    EMPORIUM_BUS           = "sqs"
    EMPORIUM_SQS_NAMESPACE = local.sqs_namespace
    EMPORIUM_SQS_REGION    = var.region
  }
  # Identity signs tokens, and issues client-credentials tokens to services (the gateway).
  identity_secrets = {
    EMPORIUM_JWT_PRIVATE_KEY          = module.data.shared_secret_arns["jwt-private-key"]
    EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD = module.data.shared_secret_arns["bootstrap-admin-password"]
    EMPORIUM_SERVICE_CLIENTS          = module.data.shared_secret_arns["service-clients"]
  }
  # Every process reads the metrics token, and shares rate limits and log-in throttles in Redis.
  metrics_secret = {
    EMPORIUM_METRICS_TOKEN = module.data.shared_secret_arns["metrics-token"]
    EMPORIUM_REDIS_URL     = module.data.shared_secret_arns["redis-url"]
  }
  smtp_secret = { EMPORIUM_SMTP_URL = module.data.shared_secret_arns["smtp-url"] }

  split = merge(
    { for i, c in local.contexts : c => {
      args          = ["serve"]
      path_patterns = ["/api/v1/${c}/*"]
      priority      = 10 + i
      memory        = c == "identity" ? 1024 : 512
      environment = merge(local.common_env, local.bus_env, {
        EMPORIUM_CONTEXTS = c
        EMPORIUM_JWKS_URL = "http://identity.${local.discovery}:8080/.well-known/jwks.json"
      }, c == "identity" ? { EMPORIUM_BOOTSTRAP_ADMIN_EMAIL = var.admin_email } : {})
      secrets = merge(
        { EMPORIUM_DATABASE_URL = module.data.database_url_secret_arns[c] },
        local.metrics_secret,
        c == "identity" ? local.identity_secrets : {},
        c == "notifications" ? local.smtp_secret : {},
      )
    } },
    {
      gateway = {
        args          = ["gateway"]
        path_patterns = ["/*"]
        priority      = 100
        memory        = 512
        environment = merge(local.common_env, {
          EMPORIUM_GATEWAY_UPSTREAMS = join(",", [for c in local.contexts : "${c}=http://${c}.${local.discovery}:8080"])
          EMPORIUM_SERVICE_CLIENT_ID = "gateway"
        })
        # Its service identity, for the dead-letter merge and the dashboard's counts.
        secrets = merge(local.metrics_secret, {
          EMPORIUM_SERVICE_CLIENT_SECRET = module.data.shared_secret_arns["gateway-client-secret"]
        })
      }
    },
  )
  monolith = {
    monolith = {
      args          = ["serve"]
      path_patterns = ["/*"]
      priority      = 100
      memory        = 1024
      environment = merge(local.common_env, {
        EMPORIUM_CONTEXTS              = join(",", local.contexts)
        EMPORIUM_BOOTSTRAP_ADMIN_EMAIL = var.admin_email
      })
      # Each context keeps its own database, as in the split topology.
      secrets = merge(
        { for c in local.contexts : "EMPORIUM_${upper(c)}_DATABASE_URL" => module.data.database_url_secret_arns[c] },
        local.metrics_secret, local.identity_secrets, local.smtp_secret,
      )
    }
  }
  services = var.topology == "split" ? local.split : local.monolith
}

module "key" {
  source = "../../modules/key"
  name   = var.name
}

module "network" {
  source             = "../../modules/network"
  name               = var.name
  availability_zones = var.availability_zones
  kms_key_arn        = module.key.arn
}

module "registry" {
  source      = "../../modules/registry"
  name        = var.name
  kms_key_arn = module.key.arn
}

module "cluster" {
  source            = "../../modules/cluster"
  name              = var.name
  vpc_id            = module.network.vpc_id
  public_subnet_ids = module.network.public_subnet_ids
  certificate_arn   = var.certificate_arn
  kms_key_arn       = module.key.arn
}

module "data" {
  source      = "../../modules/data"
  name        = var.name
  contexts    = local.contexts
  vpc_id      = module.network.vpc_id
  vpc_cidr    = module.network.cidr
  subnet_ids  = module.network.private_subnet_ids
  kms_key_arn = module.key.arn
  smtp_url    = var.smtp_url
}

module "messaging" {
  source      = "../../modules/messaging"
  namespace   = local.sqs_namespace
  kms_key_arn = module.key.arn
}

module "service" {
  source                = "../../modules/service"
  for_each              = local.services
  name                  = var.name
  service               = each.key
  args                  = each.value.args
  image                 = local.image
  memory                = each.value.memory
  environment           = each.value.environment
  secrets               = each.value.secrets
  path_patterns         = each.value.path_patterns
  rule_priority         = each.value.priority
  cluster_arn           = module.cluster.cluster_arn
  cluster_name          = module.cluster.cluster_name
  vpc_id                = module.network.vpc_id
  vpc_cidr              = module.network.cidr
  subnet_ids            = module.network.private_subnet_ids
  alb_security_group_id = module.cluster.alb_security_group_id
  listener_arn          = module.cluster.https_listener_arn
  namespace_id          = module.cluster.namespace_id
  kms_key_arn           = module.key.arn
  sqs_namespace         = local.sqs_namespace
}

output "url" {
  value = "https://${module.cluster.alb_dns_name}"
}

output "repository_url" {
  value = module.registry.repository_url
}
