# What every Ruby interop driver (peer.rb, plugins.rb, activejob.rb) shares: one JSON line per
# command on stdout, and Resque connected from the environment.
#
# Env: PEER_REDIS=host:port (default 127.0.0.1:6379), PEER_NAMESPACE (default "resque"),
#      PEER_CLUSTER=host:port,host:port (a Redis Cluster instead of PEER_REDIS: the redis gem 4's cluster client),
#      VERBOSE=1 for logging on stderr.
require 'json'
require 'logger'

def out(obj)
  $stdout.puts(JSON.generate(obj))
  $stdout.flush
end

def fail!(message, code = 1)
  out('error' => message)
  exit code
end

# A logger on stderr: debug with VERBOSE=1, else warnings only.
def peer_logger
  Logger.new($stderr).tap { |logger| logger.level = ENV['VERBOSE'] ? Logger::DEBUG : Logger::WARN }
end

def connect_resque
  Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
  redis = if ENV['PEER_CLUSTER']
            ENV.delete('REDIS_URL') # the gem builds each node's client over REDIS_URL: a redis+cluster:// one breaks it
            Redis.new(cluster: ENV['PEER_CLUSTER'].split(',').map { |node| "redis://#{node}" })
          else
            Redis.new(url: "redis://#{ENV.fetch('PEER_REDIS', '127.0.0.1:6379')}")
          end
  Resque.redis = Redis::Namespace.new(ENV.fetch('PEER_NAMESPACE', 'resque'), redis: redis)
  Resque.logger = peer_logger
end
