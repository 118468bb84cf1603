# Interop driver for the Ruby Resque plugins resque-status and resque-retry (with resque-scheduler).
#
#   ruby -I$INTEROP_RUBY_RESQUE/lib -I$INTEROP_RUBY_RESQUE_SCHEDULER/lib \
#        -I$INTEROP_RUBY_RESQUE_RETRY/lib -I$INTEROP_RUBY_RESQUE_STATUS/lib plugins.rb COMMAND ARGS...
#
# The plugins' own commands are below; every other command is peer.rb's, with these job classes
# loaded. Both gemspecs exclude Resque 3.0, but the code runs on it when loaded from the
# checkouts with -I (no gem activation). `require 'json'` must come before resque-status is
# used: without it Status::Hash#to_json recurses forever under MultiJson's Oj adapter.
require 'json'
require 'resque'
require 'resque-scheduler'
require 'resque-retry'
require 'resque/failure/redis'
require 'resque/plugins/status'
require_relative 'driver'

# Only the final failure reaches `failed` (resque-retry's suppression backend).
Resque::Failure::MultipleWithRetrySuppression.classes = [Resque::Failure::Redis]
Resque::Failure.backend = Resque::Failure::MultipleWithRetrySuppression

module Interop
  PLUGIN_RESULTS = 'interop:results'

  def self.record(klass, args)
    Resque.redis.rpush(PLUGIN_RESULTS, JSON.generate('by' => 'ruby', 'class' => klass, 'args' => args))
  end

  # resque-status: `steps` progress reports, `pause` seconds apart.
  class Report
    include Resque::Plugins::Status

    def perform
      steps = (options['steps'] || 3).to_i
      steps.times do |i|
        at(i + 1, steps, "ruby step #{i + 1}")
        sleep(options['pause'].to_f)
      end
      Interop.record('Interop::Report', [uuid, options])
    end
  end

  # resque-retry: always fails; three retries (four runs in all).
  class RetryFlaky
    extend Resque::Plugins::Retry
    @queue = :retryq
    @retry_limit = 3
    @retry_delay = 0

    def self.perform(*args)
      Interop.record('Interop::RetryFlaky', args)
      raise 'ruby flaky'
    end
  end

  # resque-retry with a delay: the same names and numbers as pyjobs.py's.
  class DelayedRetry
    extend Resque::Plugins::Retry
    @queue = :retryq
    @retry_limit = 2
    @retry_delay = 1

    def self.perform(*args)
      Interop.record('Interop::DelayedRetry', args)
    end
  end
end

PLUGIN_COMMANDS = %w[status_create status_get status_kill status_ids retry_key work_one].freeze

if PLUGIN_COMMANDS.include?(ARGV[0])
  connect_resque
  command, *argv = ARGV
  case command
  when 'status_create' # CLASS OPTIONS_JSON [QUEUE]: MyJob.create / enqueue_to, prints the uuid
    klass = Object.const_get(argv[0])
    options = JSON.parse(argv[1] || '{}')
    uuid = argv[2] ? klass.enqueue_to(argv[2], klass, options) : klass.create(options)
    out('uuid' => uuid)
  when 'status_get' # UUID: Status::Hash.get, as the web tab's .js route shows it (pct_complete added)
    status = Resque::Plugins::Status::Hash.get(argv[0])
    out(status.nil? ? nil : JSON.parse(status.json).merge('killable' => status.killable?))
  when 'status_kill' # UUID
    Resque::Plugins::Status::Hash.kill(argv[0])
    out('ok' => true)
  when 'status_ids'
    out(Resque::Plugins::Status::Hash.status_ids)
  when 'retry_key' # CLASS ARGS_JSON: resque-retry's key for these args, and the attempt stored there
    klass = Object.const_get(argv[0])
    key = klass.redis_retry_key(*JSON.parse(argv[1] || '[]'))
    out('key' => key, 'attempt' => Resque.redis.get(key))
  when 'work_one' # QUEUES: reserve and run exactly one job with a Ruby worker (forking)
    worker = Resque::Worker.new(*argv[0].split(','))
    worker.prepare
    job = worker.reserve
    worker.work_one_job(job) if job
    out('ran' => job ? job.payload : nil)
  end
else
  load File.join(__dir__, 'peer.rb')
end
