# Interop driver for Ruby Resque (and resque-scheduler).
#
#   ruby -I$INTEROP_RUBY_RESQUE/lib [-I$INTEROP_RUBY_RESQUE_SCHEDULER/lib] peer.rb COMMAND ARGS...
#
# Env: PEER_REDIS=host:port (default 127.0.0.1:6379), PEER_NAMESPACE (default "resque"),
#      VERBOSE=1 for worker logging on stderr. Each command prints one JSON line on stdout.
require 'resque'
require_relative 'driver'

module Interop
  RESULTS = 'interop:results'

  class Echo
    @queue = :default

    def self.perform(*args)
      Resque.redis.rpush(RESULTS, JSON.generate('by' => 'ruby', 'class' => name, 'args' => args))
    end
  end

  # Sleeps args[0] seconds, then records like Echo (for "busy worker" checks).
  class Sleep < Echo
    def self.perform(*args)
      sleep(Float(args.first || 1))
      super
    end
  end

  class Fail
    @queue = :default

    def self.perform(*_args)
      raise 'interop failure'
    end
  end
end

# The PHP-style names, so Ruby workers can run jobs enqueued under them.
class Interop_Echo < Interop::Echo; end
class Interop_Fail < Interop::Fail; end

def job_class(name)
  Object.const_get(name)
rescue NameError
  name # unknown here: enqueue it by name
end

def json_args(text)
  args = JSON.parse(text || '[]')
  args.is_a?(Array) ? args : [args]
end

def queues(arg)
  fail!('QUEUES required') unless arg
  arg.split(',')
end

def require_scheduler
  require 'resque-scheduler'
rescue LoadError => e
  fail!("resque-scheduler not loadable: #{e.message}", 2)
end

def start_worker(queue_list)
  worker = Resque::Worker.new(*queue_list)
  worker.prepare
  worker
end

def stats
  { 'processed' => Resque::Stat[:processed], 'failed' => Resque::Stat[:failed] }
end

connect_resque

command, *argv = ARGV
case command
when 'enqueue' # QUEUE CLASS ARGS_JSON
  queue, klass, args = argv
  out('ok' => Resque.enqueue_to(queue, job_class(klass), *json_args(args)) ? true : false)
when 'enqueue_many' # JOBS_JSON: [[QUEUE, CLASS, ARGS], ...] in one process
  jobs = JSON.parse(argv[0] || '[]')
  out('ok' => jobs.map { |queue, klass, args| Resque.enqueue_to(queue, job_class(klass), *(args.is_a?(Array) ? args : [args])) ? true : false })
when 'work' # QUEUES: drain, then exit
  before = stats
  worker = start_worker(queues(argv[0]))
  worker.work(0)
  after = stats
  out('worker' => worker.to_s,
      'processed' => after['processed'] - before['processed'],
      'failed' => after['failed'] - before['failed'])
when 'worker' # QUEUES: long-running, stop with SIGQUIT
  worker = start_worker(queues(argv[0]))
  out('worker' => worker.to_s, 'pid' => Process.pid)
  worker.work(0.1)
  out('stopped' => worker.to_s)
when 'failures'
  count = Resque::Failure.count
  items = count.zero? ? [] : Resque::Failure.all(0, count)
  out(items.is_a?(Hash) ? [items] : items)
when 'requeue'
  Resque::Failure.requeue(Integer(argv[0]))
  out('ok' => true)
when 'remove_failure'
  Resque::Failure.remove(Integer(argv[0]))
  out('ok' => true)
when 'destroy' # QUEUE CLASS [ARGS_JSON]
  queue, klass, args = argv
  out('removed' => Resque::Job.destroy(queue, klass, *(args ? json_args(args) : [])))
when 'info'
  out(Resque.info)
when 'workers'
  out(Resque.workers.map do |w|
    { 'id' => w.to_s, 'state' => w.state, 'job' => w.job,
      'processed' => w.processed, 'failed' => w.failed }
  end)
when 'web', 'web_many' # PATH, or PATHS_JSON ({path: text expected in the page, or null}): Rack mock requests
  require 'resque/server'
  begin
    require 'resque/scheduler/server'
  rescue LoadError
    nil # resque-scheduler not on the load path: plain resque-web
  end
  require 'rack/mock'
  app = Rack::MockRequest.new(Resque::Server)
  if command == 'web'
    res = app.get(argv[0] || '/')
    out('status' => res.status, 'length' => res.body.bytesize)
  else
    out(JSON.parse(argv[0] || '{}').to_h do |path, text|
      res = app.get(path)
      [path, { 'status' => res.status, 'has_text' => text.nil? || res.body.include?(text) }]
    end)
  end
when 'enqueue_at' # TS QUEUE CLASS ARGS_JSON
  require_scheduler
  ts, queue, klass, args = argv
  Resque.enqueue_at_with_queue(queue, Time.at(Integer(ts)), job_class(klass), *json_args(args))
  out('ok' => true)
when 'scheduler_once' # move due delayed items to their queues, once, as the master
  require_scheduler
  Resque::Scheduler.quiet = true
  master = Resque::Scheduler.master?
  Resque::Scheduler.handle_delayed_items if master
  Resque::Scheduler.release_master_lock
  out('master' => master, 'delayed_left' => Resque.delayed_queue_schedule_size)
when 'scheduler' # the real resque-scheduler daemon (Resque::Scheduler.run), polling every 0.2 s; QUIT/TERM stop it
  require_scheduler
  Resque::Scheduler.quiet = !ENV['VERBOSE']
  Resque::Scheduler.dynamic = false
  Resque::Scheduler.poll_sleep_amount = Float(ENV.fetch('PEER_SCHEDULER_INTERVAL', '0.2'))
  out('pid' => Process.pid)
  Resque::Scheduler.run
else
  fail!("unknown command #{command.inspect}", 64)
end
