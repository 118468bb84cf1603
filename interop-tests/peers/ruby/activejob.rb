# Interop driver for ActiveJob (Rails 6.1, Debian's ruby-activejob) on Ruby Resque 3.0.
#
#   ruby -I$INTEROP_RUBY_RESQUE/lib [-I$INTEROP_RUBY_RESQUE_SCHEDULER/lib] activejob.rb COMMAND ARGS...
#
# Env: PEER_REDIS=host:port, PEER_NAMESPACE (default "resque"), VERBOSE=1 for logging on stderr.
# Each command prints one JSON line on stdout.
#
#   kinds QUEUE [WAIT]   AjEchoJob.set(queue:, wait:).perform_later(every argument kind); prints
#                        job_id and what the job's arguments inspect as on the Ruby side
#   fail QUEUE           AjFailJob.perform_later("boom") (it records, then raises)
#   flaky QUEUE          AjFlakyJob.perform_later("again"): records, raises; retry_on schedules it again (2 s)
#   work QUEUES          a Resque worker drains the queues (forking per job), then exits
#
# AjEchoJob and AjFailJob RPUSH {"by":"ruby-activejob","job_class","job_id","executions",
# "inspect","classes"} to interop:results: `inspect` is arguments.inspect, `classes` each
# argument's class (hash and array members too).
require 'bigdecimal'
require 'resque'
require_relative 'driver'
require 'active_job'
require 'active_support/all'
require 'global_id'

# Resque 3.0's adapter subclasses this Rails 7.1 class; Rails 6.1 has none (see the reference notes).
module ActiveJob
  module QueueAdapters
    class AbstractAdapter; end unless const_defined?(:AbstractAdapter, false)
  end
end

GlobalID.app = 'interop'

# A GlobalID-identified model without a database: find(id) builds it.
class Person
  include GlobalID::Identification
  attr_reader :id

  def initialize(id)
    @id = id
  end

  def self.find(id)
    new(id)
  end

  def inspect
    "#<Person id=#{id}>"
  end
end

module Interop
  RESULTS = 'interop:results'

  def self.classes(value)
    case value
    when Hash then { value.class.name => value.to_h { |k, v| ["#{k.class.name}:#{k}", classes(v)] } }
    when Array then value.map { |v| classes(v) }
    else value.class.name
    end
  end

  def self.record(job, args)
    Resque.redis.rpush(RESULTS, JSON.generate(
      'by' => 'ruby-activejob', 'job_class' => job.class.name, 'job_id' => job.job_id,
      'executions' => job.executions, 'inspect' => args.inspect, 'classes' => classes(args)
    ))
  end

  # The value of every argument kind the tests send (the same on both sides).
  def self.kinds
    Time.zone = 'Asia/Tokyo'
    [
      1, -2**62, 1.5, 'two', nil, true, false,
      [1, 'a', [nil]],
      { 'k' => 'v', 'n' => { 'deep' => [1] } },
      { sym: 1, 'str' => 2 },
      ActiveSupport::HashWithIndifferentAccess.new('a' => 1),
      :sym,
      Time.utc(2026, 11, 29, 10, 0, 0, 123456),
      Time.new(2026, 11, 29, 10, 0, 0, '+05:30'),
      DateTime.new(2026, 11, 29, 10, 0, 0, '-03:00'),
      Date.new(2026, 11, 29),
      Time.zone.local(2026, 11, 29, 19, 0, 0),
      1.hour,
      2.days + 3.minutes,
      1.month,
      BigDecimal('12.345'),
      Person,
      Person.new(42)
    ]
  end
end

class AjEchoJob < ActiveJob::Base
  queue_as :default

  def perform(*args, **kwargs)
    Interop.record(self, kwargs.empty? ? args : [*args, kwargs])
  end
end

class AjFailJob < ActiveJob::Base
  queue_as :default

  def perform(*args)
    Interop.record(self, args)
    raise 'interop failure'
  end
end

# Fails on Ruby; ActiveJob's retry_on enqueues the next attempt (executions carried) through resque-scheduler.
class AjFlakyJob < ActiveJob::Base
  queue_as :default
  retry_on RuntimeError, wait: 2, attempts: 3

  def perform(*args)
    Interop.record(self, args)
    raise 'flaky'
  end
end

connect_resque
ActiveJob::Base.logger = peer_logger
ActiveJob::Base.queue_adapter = :resque

command, *argv = ARGV
case command
when 'kinds' # QUEUE [WAIT_SECONDS]
  queue, wait = argv
  options = { queue: queue }
  options[:wait] = Float(wait) if wait
  args = Interop.kinds
  job = AjEchoJob.set(**options).perform_later(*args, lang: 'en', at: :noon)
  out('job_id' => job.job_id, 'inspect' => [*args, { lang: 'en', at: :noon }].inspect)
when 'fail' # QUEUE
  job = AjFailJob.set(queue: argv[0]).perform_later('boom')
  out('job_id' => job.job_id)
when 'flaky' # QUEUE
  job = AjFlakyJob.set(queue: argv[0]).perform_later('again')
  out('job_id' => job.job_id)
when 'work' # QUEUES
  worker = Resque::Worker.new(*argv[0].split(','))
  worker.prepare
  worker.work(0)
  out('worker' => worker.to_s, 'processed' => Resque::Stat[:processed], 'failed' => Resque::Stat[:failed])
else
  fail!("unknown command #{command.inspect}", 64)
end
